import { describe, expect, it } from 'vitest';
import { lateBound } from './late.js';

describe('lateBound', () => {
  it('reads through to the object once it is set, and throws before', () => {
    let current: { n: number; double(): number } | undefined;
    const late = lateBound(() => current, 'the broker');
    expect(() => late.n).toThrow('the broker is not set yet');
    const first = { n: 2, double: () => 4 };
    current = first;
    expect(late.n).toBe(2);
    expect(late.double()).toBe(4);
    current = { n: 3, double: () => 6 };
    expect(late.n).toBe(3); // each read asks again
  });
});
