import { describe, expect, it } from 'vitest';
import { ShutdownError } from '../src/errors.js';
import { ackDecision, settleDelivery } from '../src/kit/ack.js';
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
});
