import { describe, expect, it } from 'vitest';
import { Acks } from './acks.js';

/** One turn of the event loop later (after the check phase of this one). */
const nextTurn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

describe('Acks: the replies settled in one turn of the event loop leave together', () => {
  it('runs every reply queued in this turn in one flush, after the turn, and resolves once they ran', async () => {
    const acks = new Acks();
    const ran: string[] = [];
    const first = acks.send(() => ran.push('a'));
    // a second I/O callback of the same turn (a macrotask would be the next turn; a microtask is this one)
    await Promise.resolve();
    const second = acks.send(() => ran.push('b'));
    expect(ran).toEqual([]); // never synchronously: the acks of the turn are still coming
    expect(second).toBe(first); // one flush for both
    await first;
    expect(ran).toEqual(['a', 'b']);
  });

  it('a reply of a later turn goes in a flush of its own', async () => {
    const acks = new Acks();
    const ran: string[] = [];
    const first = acks.send(() => ran.push('a'));
    await first;
    await nextTurn();
    const second = acks.send(() => ran.push('b'));
    expect(second).not.toBe(first);
    expect(ran).toEqual(['a']);
    await second;
    expect(ran).toEqual(['a', 'b']);
  });

  it('a reply that throws anyway does not keep the others from being sent, nor the flush from resolving', async () => {
    const acks = new Acks();
    const ran: string[] = [];
    acks.send(() => {
      throw new Error('connection closed');
    });
    await acks.send(() => ran.push('b'));
    expect(ran).toEqual(['b']);
  });
});
