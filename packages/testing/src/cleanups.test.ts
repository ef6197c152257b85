import { describe, expect, it } from 'vitest';
import { cleanups } from './cleanups.js';

describe('cleanups', () => {
  it('runs every cleanup once, last added first, awaiting each', async () => {
    const c = cleanups();
    const order: string[] = [];
    c.add(() => order.push('first'));
    c.add(async () => {
      await new Promise((r) => setTimeout(r, 5));
      order.push('second');
    });
    const value = c.use({ name: 'third' }, (v) => order.push(v.name));
    expect(value).toEqual({ name: 'third' });
    expect(c.size).toBe(3);
    await c.run();
    expect(order).toEqual(['third', 'second', 'first']);
    expect(c.size).toBe(0);
    await c.run();
    expect(order).toHaveLength(3);
  });

  it('runs the rest when one fails, then throws its error', async () => {
    const c = cleanups();
    const ran: number[] = [];
    const boom = new Error('close failed');
    c.add(() => ran.push(1));
    c.add(() => {
      throw boom;
    });
    c.add(() => ran.push(3));
    await expect(c.run()).rejects.toBe(boom);
    expect(ran).toEqual([3, 1]);
  });

  it('throws an AggregateError when several fail, and runs cleanups added while running', async () => {
    const c = cleanups();
    const ran: string[] = [];
    c.add(() => Promise.reject(new Error('a')));
    c.add(() => {
      c.add(() => ran.push('added late'));
      throw new Error('b');
    });
    const err = (await c.run().catch((e: unknown) => e)) as AggregateError;
    expect(err).toBeInstanceOf(AggregateError);
    expect(err.message).toBe('2 cleanups failed');
    expect(err.errors.map((e: Error) => e.message)).toEqual(['b', 'a']);
    expect(ran).toEqual(['added late']);
  });
});
