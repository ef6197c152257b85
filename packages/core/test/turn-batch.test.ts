import { describe, expect, it } from 'vitest';
import { TurnBatch } from '../src/kit/turn-batch.js';

/** One turn of the event loop later (after the check phase of this one). */
const nextTurn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

describe('TurnBatch: what is queued in one turn of the event loop is flushed together', () => {
  it('flushes every item of this turn once, after the turn, in order, and resolves once flushed', async () => {
    const flushes: string[][] = [];
    const batch = new TurnBatch<string>((items) => flushes.push(items));
    const first = batch.add('a');
    // a second I/O callback of the same turn (a macrotask would be the next turn; a microtask is this one)
    await Promise.resolve();
    const second = batch.add('b');
    expect(flushes).toEqual([]); // never synchronously: the acks of the turn are still coming
    expect(batch.size).toBe(2);
    expect(second).toBe(first); // one flush for both
    await first;
    expect(flushes).toEqual([['a', 'b']]);
    expect(batch.size).toBe(0);
  });

  it('an item of a later turn goes in a flush of its own', async () => {
    const flushes: string[][] = [];
    const batch = new TurnBatch<string>((items) => flushes.push(items));
    const first = batch.add('a');
    await first;
    await nextTurn();
    const second = batch.add('b');
    expect(second).not.toBe(first);
    expect(flushes).toEqual([['a']]);
    await second;
    expect(flushes).toEqual([['a'], ['b']]);
  });

  it('flushNow sends at once (before a close) and resolves the waiters; the scheduled flush then finds nothing', async () => {
    const flushes: string[][] = [];
    const batch = new TurnBatch<string>((items) => flushes.push(items));
    const waiting = batch.add('a');
    batch.flushNow();
    expect(flushes).toEqual([['a']]);
    await waiting;
    await nextTurn();
    expect(flushes).toEqual([['a']]); // no empty flush
    await batch.add('b');
    expect(flushes).toEqual([['a'], ['b']]);
  });

  it('a flush that throws anyway still resolves its waiters, and the next turn flushes again', async () => {
    let calls = 0;
    const batch = new TurnBatch<string>(() => {
      calls++;
      throw new Error('connection closed');
    });
    await batch.add('a');
    await batch.add('b');
    expect(calls).toBe(2);
  });
});
