import { describe, expect, it } from 'vitest';
import { covers, reduceFilters } from './filters.js';

/** The former quadratic reduceFilters: the reference the trie version must agree with. */
function reduceFiltersQuadratic(filters: Iterable<string>): string[] {
  const list = [...new Set(filters)];
  return list.filter((f, i) => !list.some((g, j) => j !== i && covers(g, f) && (!covers(f, g) || j < i)));
}

/** A small seeded PRNG (mulberry32), so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random valid MQTT topic filter over a tiny alphabet (so that overlaps are frequent). */
function randomFilter(rand: () => number): string {
  const alphabet = ['a', 'b', 'c', '', '$s', '+', '+'];
  const depth = 1 + Math.floor(rand() * 4);
  const levels: string[] = [];
  for (let i = 0; i < depth; i++) levels.push(alphabet[Math.floor(rand() * alphabet.length)] as string);
  if (rand() < 0.3) levels.push('#');
  else if (rand() < 0.05) return '#';
  return levels.join('/');
}

describe('covers', () => {
  it.each([
    ['#', 'a/b', true],
    ['#', '$SYS/x', false],
    ['+/#', '$SYS/x', false],
    ['a/#', 'a', true],
    ['a/#', 'a/+/c', true],
    ['a/#', 'b/c', false],
    ['a/+/c', 'a/b/c', true],
    ['a/+/c', 'a/+/c', true],
    ['a/b/c', 'a/+/c', false],
    ['a/+', 'a/#', false],
    ['+/+', 'a/+', true],
    ['+', '$x', false],
    ['a/+/c', 'a/b/#', false],
    ['a/b', 'a/b/c', false],
  ])('%s covers %s: %s', (a, b, expected) => {
    expect(covers(a, b)).toBe(expected);
  });
});

describe('reduceFilters', () => {
  it('drops filters another one covers, keeps partial overlaps and $-filters', () => {
    expect(reduceFilters(['sensors/+/temp', 'sensors/#', 'alerts/fire', 'sensors/#'])).toEqual([
      'sensors/#',
      'alerts/fire',
    ]);
    expect(reduceFilters(['#', 'a/b', '$internal/#'])).toEqual(['#', '$internal/#']);
    expect(reduceFilters(['a/+/c', 'a/b/#'])).toEqual(['a/+/c', 'a/b/#']);
    expect(reduceFilters(['a/#', 'a', 'a/+', '+/#', '$s/+', '+/+', 'b/+'])).toEqual(['+/#', '$s/+']);
    expect(reduceFilters([])).toEqual([]);
  });

  it('gives exactly what the quadratic algorithm gave, on 2,000 random filter sets', () => {
    for (let seed = 1; seed <= 2000; seed++) {
      const rand = prng(seed);
      const n = 1 + Math.floor(rand() * 40);
      const filters = Array.from({ length: n }, () => randomFilter(rand));
      const got = reduceFilters(filters);
      const want = reduceFiltersQuadratic(filters);
      if (JSON.stringify(got) !== JSON.stringify(want))
        expect({ seed, filters, got }).toEqual({ seed, filters, got: want });
    }
  });
});
