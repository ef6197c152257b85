/** Property-based tests (fast-check) of NATS subject matching against a reference written here from the docs. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { natsMatch, subjectCovers, subjectProblem } from './subjects.js';

/**
 * Reference: subjects are '.'-separated tokens; '*' matches exactly one token, '>' (last token only) one or more
 * tokens. Written as a regular expression over the tokens, independently of the code under test.
 */
function refNats(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const re = p
    .map((t, i) => {
      if (t === '*') return '[^.]+';
      if (t === '>' && i === p.length - 1) return '[^.]+(?:\\.[^.]+)*';
      return t.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
    })
    .join('\\.');
  return new RegExp(`^${re}$`).test(subject);
}

const token = fc.constantFrom('a', 'b', 'orders', 'ü');
const subject = fc.array(token, { minLength: 1, maxLength: 5 }).map((t) => t.join('.'));
const pattern = fc
  .tuple(
    fc.array(fc.constantFrom('a', 'b', 'orders', 'ü', '*'), { minLength: 0, maxLength: 4 }),
    fc.boolean(),
  )
  .map(([t, tail]) => [...t, ...(tail || t.length === 0 ? ['>'] : [])].join('.'));

describe('NATS-style matching (* one token, > the rest)', () => {
  it('valid patterns and subjects: natsMatch agrees with the reference', () => {
    fc.assert(
      fc.property(pattern, subject, (p, s) => {
        expect(subjectProblem(p)).toBeUndefined();
        expect(natsMatch(p, s)).toBe(refNats(p, s));
      }),
      { numRuns: 2000 },
    );
  });

  it('subjectCovers(by, f) only when every subject f matches, by matches too', () => {
    fc.assert(
      fc.property(
        pattern,
        pattern,
        fc.array(subject, { minLength: 20, maxLength: 20 }),
        (by, f, subjects) => {
          if (!subjectCovers(by, f)) return;
          for (const s of subjects) if (natsMatch(f, s)) expect(natsMatch(by, s)).toBe(true);
          // a subject f's wildcards stand for: '*' → 'x', '>' → 'x.y'
          const widest = f.replaceAll('*', 'x').replace(/>$/, 'x.y');
          expect(natsMatch(by, widest)).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('any string: subjectProblem refuses it or it splits into non-empty tokens with whole-token wildcards', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom('a', '.', '*', '>', ' ', '\t', 'é'), maxLength: 10 }),
        (s) => {
          if (subjectProblem(s) !== undefined) return;
          const tokens = s.split('.');
          for (const [i, t] of tokens.entries()) {
            expect(t).not.toBe('');
            expect(t).not.toMatch(/\s/);
            if (t.includes('*') || t.includes('>'))
              expect(t === '*' || (t === '>' && i === tokens.length - 1)).toBe(true);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});
