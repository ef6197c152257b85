import { describe, expect, it } from 'vitest';
import { natsMatch, subjectCovers, subjectProblem } from './subjects.js';

describe('natsMatch', () => {
  it.each([
    ['orders.*', 'orders.eu', true],
    ['orders.*', 'orders.eu.paid', false],
    ['orders.*', 'orders', false],
    ['orders.>', 'orders.eu.paid', true],
    ['orders.>', 'orders', false],
    ['>', 'anything.at.all', true],
    ['*.eu.*', 'orders.eu.paid', true],
    ['*.eu.*', 'orders.us.paid', false],
    ['orders.eu', 'orders.eu', true],
    ['orders.eu', 'orders.EU', false],
    ['a.*.c', 'a.b.c', true],
    ['a.*.c', 'a.b.d', false],
  ])('%s matches %s: %s', (pattern, subject, want) => {
    expect(natsMatch(pattern, subject)).toBe(want);
  });
});

describe('subjectCovers', () => {
  it.each([
    ['orders.>', 'orders.*', true],
    ['orders.>', 'orders.eu.>', true],
    ['orders.*', 'orders.>', false],
    ['orders.*', 'orders.eu', true],
    ['*.*', 'orders.eu', true],
    ['orders.eu', 'orders.*', false],
    ['>', 'a', true],
    ['a.>', 'a', false],
    ['a.*.c', 'a.b.*', false],
  ])('%s covers %s: %s', (by, filter, want) => {
    expect(subjectCovers(by, filter)).toBe(want);
  });
});

describe('subjectProblem', () => {
  it('accepts subjects and filters', () => {
    for (const s of ['a', 'a.b', 'a.*', 'a.>', '*', '>', '_INBOX.>', 'orders-eu.v1'])
      expect(subjectProblem(s)).toBeUndefined();
  });
  it('names what is wrong', () => {
    expect(subjectProblem('')).toBe('a non-empty subject');
    expect(subjectProblem('a b')).toBe('a subject without white space');
    expect(subjectProblem('a..b')).toMatch(/empty tokens/);
    expect(subjectProblem('a.')).toMatch(/empty tokens/);
    expect(subjectProblem('a.>.b')).toBe("'>' only as the last token of a subject");
    expect(subjectProblem('a.b*')).toBe("wildcards '*' and '>' only as a whole token");
  });
});
