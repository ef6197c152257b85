import { describe, expect, it } from 'vitest';
import { ShutdownError } from '../src/errors.js';
import { ackDecision, rejectionDecision, settleDelivery } from '../src/kit/ack.js';
import { InFlight } from '../src/kit/in-flight.js';
import type { DeliveryOutcome } from '../src/source.js';

const outcome = (ack: boolean): DeliveryOutcome => ({
  status: ack ? 'delivered' : 'failed',
  ack,
  results: [],
});

describe('settleDelivery / ackDecision', () => {
  it('acks iff outcome.ack', async () => {
    expect(ackDecision(outcome(true))).toBe('ack');
    expect(ackDecision(outcome(false))).toBe('nack');
    expect(ackDecision({ status: 'dead-lettered', ack: true, results: [] })).toBe('ack');
    expect(ackDecision({ status: 'unrouted', ack: true, results: [] })).toBe('ack');
    expect(await settleDelivery(Promise.resolve(outcome(true)))).toBe('ack');
    expect(await settleDelivery(Promise.resolve(outcome(false)))).toBe('nack');
  });

  it('a ShutdownError does nothing (not even onError); any other rejection nacks and is reported', async () => {
    const heard: unknown[] = [];
    const onError = (e: unknown) => heard.push(e);
    expect(await settleDelivery(Promise.reject(new ShutdownError()), onError)).toBe('shutdown');
    expect(heard).toEqual([]);
    const boom = new Error('boom');
    expect(await settleDelivery(Promise.reject(boom), onError)).toBe('nack');
    expect(heard).toEqual([boom]);
    expect(await settleDelivery(Promise.reject('odd'))).toBe('nack'); // no onError: still nack
  });

  it('rejectionDecision is the same rule without the promise', () => {
    const heard: unknown[] = [];
    expect(rejectionDecision(new ShutdownError(), (e) => heard.push(e))).toBe('shutdown');
    expect(rejectionDecision('odd', (e) => heard.push(e))).toBe('nack');
    expect(heard).toEqual(['odd']);
  });
});

describe('InFlight', () => {
  it('idle() waits for tracked promises and counted work alike, including work started while waiting', async () => {
    const f = new InFlight();
    await f.idle(); // nothing: at once
    let release!: () => void;
    f.track(new Promise<void>((r) => (release = r)));
    f.enter();
    expect(f.size).toBe(2);
    let idle = false;
    const waiting = f.idle().then(() => {
      idle = true;
    });
    release();
    await new Promise((r) => setImmediate(r));
    expect(idle).toBe(false); // the counted work is still running
    f.enter(); // more work while waiting
    f.leave();
    await new Promise((r) => setImmediate(r));
    expect(idle).toBe(false);
    f.leave();
    await waiting;
    expect(f.size).toBe(0);
  });
});
