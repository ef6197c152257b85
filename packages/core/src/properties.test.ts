/**
 * Property-based tests (fast-check) of the parsers and mappers that take outside input: env values, topic
 * annotations, MQTT-style matching (against a reference written here), the header policy and function paths.
 * Each property runs a few hundred cases: the whole file stays well under a few seconds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EnvReader, parseBool, parseDuration } from './config.js';
import {
  copyMessageHeaders,
  encodeHeaderValue,
  functionPath,
  isHeaderName,
  isPlainHeaderValue,
  MAX_MESSAGE_HEADER_BYTES,
  RESERVED_HEADERS,
} from './headers.js';
import { mqttMatch, parseTopics, TopicMap } from './topic-map.js';
import type { FunctionInfo } from './types.js';

const runs = { numRuns: 300 };

/** Characters that break naive parsers: separators, escapes, white space, controls, non-ASCII, a lone surrogate. */
const nasty = fc.constantFrom(
  '/',
  '.',
  '..',
  '?',
  '#',
  '%',
  '%2E',
  '%2F',
  '%%',
  '\\',
  ' ',
  '\t',
  '\r',
  '\n',
  '\0',
  ',',
  ':',
  'é',
  '€',
  '😀',
  '\u202e',
  '\ud800',
  '+',
  '*',
  '>',
);
/** Any string, biased towards the nasty characters. */
const hostile = fc.string({
  unit: fc.oneof(nasty, fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })),
  maxLength: 12,
});

describe('env values', () => {
  const UNITS = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
  const part = fc.tuple(
    fc.nat({ max: 10_000 }),
    fc.constantFrom(...(Object.keys(UNITS) as (keyof typeof UNITS)[])),
  );

  it('a Go duration made of parts parses to the sum of its parts', () => {
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 4 }), fc.constantFrom('', ' '), (parts, pad) => {
        const text = pad + parts.map(([n, u]) => `${n}${u}`).join('') + pad;
        const want = parts.reduce((ms, [n, u]) => ms + n * UNITS[u], 0);
        expect(parseDuration(text)).toBeCloseTo(want, 6);
      }),
      runs,
    );
  });

  it('any string is a finite, non-negative duration or undefined (never NaN, never a throw)', () => {
    fc.assert(
      fc.property(fc.oneof(hostile, fc.stringMatching(/^[\d.]{0,400}(ns|us|ms|s|m|h)?$/)), (s) => {
        const ms = parseDuration(s);
        if (ms !== undefined) expect(Number.isFinite(ms) && ms >= 0).toBe(true);
      }),
      runs,
    );
  });

  it('a duration setting is a timer delay Node can keep, or a one-line ConfigError naming it', () => {
    fc.assert(
      fc.property(fc.oneof(hostile, fc.stringMatching(/^\d{1,14}(ms|s|m|h)$/)), (v) => {
        let ms: number | undefined;
        try {
          ms = new EnvReader({ rebuild_interval: v }).duration('rebuild_interval');
        } catch (err) {
          expect(err).toMatchObject({ code: 'ERR_CONFIG', setting: 'rebuild_interval' });
          expect((err as Error).message).not.toMatch(/[\r\n]/);
          return;
        }
        // setTimeout with more than 2^31-1 ms fires after 1 ms: a long interval would become a busy loop
        if (ms !== undefined) expect(ms).toBeLessThanOrEqual(2 ** 31 - 1);
      }),
      runs,
    );
  });

  it('booleans: the known words in any case and padding, nothing else', () => {
    const words = {
      true: ['1', 't', 'true', 'yes', 'y', 'on'],
      false: ['0', 'f', 'false', 'no', 'n', 'off'],
    };
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.nat(5),
        fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
        fc.constantFrom('', ' ', '\t'),
        (b, i, upper, pad) => {
          const word = [...(words[`${b}`][i] as string)]
            .map((c, j) => (upper[j] ? c.toUpperCase() : c))
            .join('');
          expect(parseBool(pad + word + pad)).toBe(b);
        },
      ),
      runs,
    );
    const known = new Set([...words.true, ...words.false]);
    fc.assert(
      fc.property(hostile, (s) => {
        const b = parseBool(s);
        expect(b === undefined ? !known.has(s.trim().toLowerCase()) : known.has(s.trim().toLowerCase())).toBe(
          true,
        );
      }),
      runs,
    );
  });

  it('an integer setting is an integer in its range, or a one-line ConfigError naming it', () => {
    fc.assert(
      fc.property(fc.oneof(hostile, fc.integer().map(String), fc.stringMatching(/^-?\d{1,30}$/)), (v) => {
        try {
          const n = new EnvReader({ max_retries: v }).int('max_retries', { min: 0, max: 1000 });
          if (n !== undefined) expect(Number.isInteger(n) && n >= 0 && n <= 1000).toBe(true);
          else expect(v.trim()).toBe('');
        } catch (err) {
          expect(err).toMatchObject({ code: 'ERR_CONFIG', setting: 'max_retries' });
          expect((err as Error).message).not.toMatch(/[\r\n]/);
        }
      }),
      runs,
    );
  });
});

describe('topic annotations', () => {
  /** A topic as an annotation carries it: not empty, no edge white space, no character of the delimiter (`a:` then
   * `::` would be ambiguous). */
  const topicWithout = (delimiter: string) =>
    hostile.map((t) => t.trim()).filter((t) => t !== '' && ![...delimiter].some((c) => t.includes(c)));

  it('split on any delimiter: the topics in order, trimmed, once each, no empties', () => {
    const pad = fc.constantFrom('', ' ', '\t', '  ');
    const annotation = fc
      .constantFrom(',', ';', '|', '::', '->')
      .chain((delimiter) =>
        fc.tuple(
          fc.constant(delimiter),
          fc.array(fc.tuple(topicWithout(delimiter), pad, pad, fc.boolean()), { maxLength: 6 }),
        ),
      );
    fc.assert(
      fc.property(annotation, ([delimiter, parts]) => {
        // each topic padded, some followed by an empty entry (`a,,b`)
        const text = parts
          .map(([t, l, r, empty]) => `${l}${t}${r}${empty ? `${delimiter} ` : ''}`)
          .join(delimiter);
        expect(parseTopics(text, delimiter)).toEqual([...new Set(parts.map(([t]) => t))]);
      }),
      runs,
    );
  });

  it('any annotation and delimiter: no empty, untrimmed or duplicate topic, never a throw', () => {
    fc.assert(
      fc.property(
        hostile,
        hostile.filter((d) => d !== ''),
        (annotation, delimiter) => {
          const got = parseTopics(annotation, delimiter);
          for (const t of got) expect(t === t.trim() && t !== '').toBe(true);
          expect(new Set(got).size).toBe(got.length);
        },
      ),
      runs,
    );
  });
});

/** Reference MQTT matcher (MQTT 3.1.1 §4.7), written from the spec by recursion over levels, not from the code. */
function refMqtt(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  const go = (i: number, j: number): boolean => {
    if (i === f.length) return j === t.length;
    const seg = f[i];
    if (seg === '#') return i === f.length - 1; // the parent level and any number of child levels
    if (j === t.length) return false;
    if (seg === '+' || seg === t[j]) return go(i + 1, j + 1);
    return false;
  };
  // a filter starting with a wildcard does not match a topic starting with '$' (§4.7.2)
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  return go(0, 0);
}

describe('MQTT-style matching (+ one level, # the rest)', () => {
  const level = fc.constantFrom('a', 'b', '', '$s', 'a b');
  const topic = fc.array(level, { minLength: 1, maxLength: 5 }).map((l) => l.join('/'));
  const filter = fc
    .array(fc.constantFrom('a', 'b', '', '$s', '+', '#'), { minLength: 1, maxLength: 5 })
    .map((l) => l.join('/'))
    .filter(
      (f) => !f.includes('#') || (f.endsWith('#') && f.indexOf('#') === f.length - 1 && /(^|\/)#$/.test(f)),
    );

  it('mqttMatch agrees with the reference', () => {
    fc.assert(
      fc.property(filter, topic, (f, t) => {
        expect(mqttMatch(f, t)).toBe(refMqtt(f, t));
      }),
      { numRuns: 2000 },
    );
  });

  it("the topic map's trie routes exactly where the reference says, and names the same subscriptions", () => {
    const fn = (i: number, topics: string[]): FunctionInfo => ({
      name: `f${i}`,
      namespace: 'ns',
      address: `f${i}.ns`,
      topics,
      annotations: {},
    });
    fc.assert(
      fc.property(
        fc.array(fc.uniqueArray(filter, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 4 }),
        fc.array(topic, { minLength: 1, maxLength: 8 }),
        (filters, topics) => {
          const fns = filters.map((f, i) => fn(i, f));
          const map = new TopicMap(fns, 'mqtt');
          for (const t of topics) {
            const want = fns.filter((f) => f.topics.some((p) => refMqtt(p, t))).map((f) => f.name);
            expect(
              map
                .match(t)
                .map((f) => f.name)
                .sort(),
            ).toEqual(want.sort());
            const subs = new Set(fns.flatMap((f) => f.topics.filter((p) => refMqtt(p, t))));
            expect([...map.subscriptions(t)].sort()).toEqual([...subs].sort());
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

/** What a UTF-8 encoder makes of a lone surrogate: U+FFFD. */
const wellFormed = (s: string) => s.replace(/[\uD800-\uDFFF]/gu, '\uFFFD');

/** Percent-decode to bytes (decodeURIComponent decodes to text and refuses invalid UTF-8). */
function percentDecode(s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%') {
      out.push(Number.parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(s.charCodeAt(i));
  }
  return Uint8Array.from(out);
}

describe('header policy', () => {
  const name = fc.oneof(
    hostile,
    fc.constantFrom(...RESERVED_HEADERS, 'Content-Type', 'X-Topic', 'HOST', 'traceparent', 'x-b3-traceid'),
  );
  const value = fc.oneof(
    hostile,
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.uint8Array({ maxLength: 24 }),
  );

  it('any headers become valid HTTP headers, not reserved, within the size cap; refused names are reported', () => {
    fc.assert(
      fc.property(fc.dictionary(name, value, { maxKeys: 12 }), fc.nat({ max: 400 }), (headers, cap) => {
        const out: Record<string, string> = {};
        const dropped = copyMessageHeaders(headers, out, cap);
        let bytes = 0;
        for (const [k, v] of Object.entries(out)) {
          expect(isHeaderName(k) && k === k.toLowerCase() && !RESERVED_HEADERS.has(k)).toBe(true);
          expect(isPlainHeaderValue(v)).toBe(true);
          bytes += k.length + v.length + 4;
        }
        expect(bytes).toBeLessThanOrEqual(cap);
        expect(() => new Headers(Object.entries(out))).not.toThrow(); // what fetch/undici accept
        for (const k of Object.keys(headers)) {
          const kept = out[k.toLowerCase()] !== undefined;
          const listed = dropped?.refused.includes(k) || dropped?.oversize.includes(k);
          // each name is either sent or reported (a later name can replace an earlier one that differs in case)
          if (!kept) expect(listed).toBe(true);
        }
      }),
      runs,
    );
  });

  it('an encoded value gives the original back: text through decodeURIComponent, bytes through percent-decoding', () => {
    fc.assert(
      fc.property(fc.oneof(hostile, fc.string({ unit: 'binary', maxLength: 40 })), (v) => {
        const out = encodeHeaderValue(v);
        expect(isPlainHeaderValue(out)).toBe(true);
        if (out === v) return; // printable ASCII goes out as it is
        // a lone surrogate cannot be UTF-8: it is sent as U+FFFD, like every UTF-8 encoder does
        expect(decodeURIComponent(out)).toBe(wellFormed(v));
      }),
      runs,
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (b) => {
        const out = encodeHeaderValue(b);
        expect(isPlainHeaderValue(out)).toBe(true);
        if (out === Buffer.from(b).toString('latin1')) return;
        expect(percentDecode(out)).toEqual(b);
      }),
      runs,
    );
  });

  it('the default cap holds for a flood of headers', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.stringMatching(/^[a-z]{1,8}$/), fc.string({ maxLength: 4000 })), (h) => {
        const out: Record<string, string> = {};
        copyMessageHeaders(h, out);
        const bytes = Object.entries(out).reduce((n, [k, v]) => n + k.length + v.length + 4, 0);
        expect(bytes).toBeLessThanOrEqual(MAX_MESSAGE_HEADER_BYTES);
      }),
      { numRuns: 50 },
    );
  });
});

describe('function names and namespaces in URLs', () => {
  const part = fc.oneof(
    hostile,
    fc.constantFrom('', '.', '..', '...', '%2e', '%2E%2E', '.%2E', 'fn', 'openfaas-fn'),
  );

  it.each(['/function/', '/async-function/'])(
    'no name or namespace leaves %s<name>.<namespace>',
    (prefix) => {
      fc.assert(
        fc.property(part, part, (name, namespace) => {
          const segment = functionPath(name, namespace);
          const address = namespace === '' ? name : `${name}.${namespace}`;
          if (segment === undefined) {
            // a clean refusal, only for what cannot be a function's address
            expect(
              name === '' || address === '.' || address === '..' || wellFormed(address) !== address,
            ).toBe(true);
            return;
          }
          const url = new URL(prefix + segment, 'http://gateway:8080');
          // one segment right under the prefix, whatever a URL parser (or a proxy) normalises
          expect(url.pathname).toBe(prefix + segment);
          expect(url.search).toBe('');
          expect(url.hash).toBe('');
          expect(segment).not.toMatch(/[/?#\\]|%(?![0-9A-F]{2})/);
          const decoded = decodeURIComponent(segment);
          expect(decoded).not.toMatch(/^\.{0,2}$/); // '', '.' or '..' would address the prefix or its parent
          expect(decoded).toBe(address);
        }),
        { numRuns: 1000 },
      );
    },
  );
});
