import { describe, expect, it } from 'vitest';
import { covers, reduceFilters } from './filters.js';

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
  });
});
