import { describe, expect, it } from 'vitest';
import { retryAfterMs } from './engine.js';
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
