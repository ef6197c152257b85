import { describe, expect, it } from 'vitest';
import { Arrivals, retryAfterMs } from './engine.js';
import { backoff } from './kit/backoff.js';
import { Semaphore } from './semaphore.js';

describe('backoff (full jitter)', () => {
  it('stays within [0, min(maxDelay, minDelay * 2^(attempt-1))]', () => {
    expect(backoff(1, 100, 10_000, () => 0.999)).toBe(99);
    expect(backoff(3, 100, 10_000, () => 0.999)).toBe(399);
    expect(backoff(20, 100, 10_000, () => 0.999)).toBe(9990);
    expect(backoff(5, 100, 10_000, () => 0)).toBe(0);
  });
});

describe('retryAfterMs', () => {
  it('reads seconds and HTTP dates, capped at 10 minutes', () => {
    expect(retryAfterMs('1')).toBe(1000);
    expect(retryAfterMs('0')).toBe(0);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 5_000)).toBe(5000);
    expect(retryAfterMs('99999')).toBe(600_000);
    expect(retryAfterMs(undefined)).toBeUndefined();
    expect(retryAfterMs('')).toBeUndefined(); // an empty header is none, not 0
    expect(retryAfterMs('soon')).toBeUndefined();
  });
});

describe('Semaphore', () => {
  it('grants up to the limit, queues the rest FIFO, rejects waiters on rejectAll', async () => {
    const s = new Semaphore(2);
    await s.acquire();
    await s.acquire();
    expect(s.active).toBe(2);
    const order: number[] = [];
    const a = s.acquire().then(() => order.push(1));
    const b = s.acquire().then(() => order.push(2));
    expect(s.waiting).toBe(2);
    s.release();
    await a;
    expect(order).toEqual([1]);
    s.release();
    await b;
    expect(order).toEqual([1, 2]);
    expect(s.active).toBe(2);
    const c = s.acquire();
    s.rejectAll(new Error('stop'));
    await expect(c).rejects.toThrow('stop');
    s.release();
    s.release();
    expect(s.active).toBe(0);
    expect(s.tryAcquire()).toBe(true);
  });
});

describe('Arrivals (the age of the oldest pending message)', () => {
  it('gives the oldest unsettled arrival whatever the order of settlement, across wrap-arounds and growth', () => {
    const a = new Arrivals();
    const open = new Map<number, number>(); // number -> arrival time, the model
    let t = 0;
    let seed = 7;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 16) % n;
    };
    const check = () => expect(a.oldest()).toBe(open.size === 0 ? undefined : Math.min(...open.values()));
    check();
    for (let i = 0; i < 100; i++) a.settle(a.add(t++)); // the head past the ring's first lap before it grows
    check();
    for (let round = 0; round < 2000; round++) {
      // More arrivals than settlements early on (the ring grows past 64 with its head mid-ring), fewer later.
      const adds = round < 1000 ? rand(4) : rand(2);
      for (let i = 0; i < adds; i++) open.set(a.add(t), t++);
      const keys = [...open.keys()];
      if (keys.length > 0) {
        const n = keys[rand(keys.length)] as number;
        a.settle(n);
        open.delete(n);
      }
      check();
    }
    for (const n of [...open.keys()]) {
      a.settle(n);
      open.delete(n);
      check();
    }
  });
});
