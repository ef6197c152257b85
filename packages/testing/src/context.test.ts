import { isShutdownError, type SourceMessage } from '@connector/core';
import { describe, expect, it } from 'vitest';
import { createTestContext, deferred, hold, outcomes } from './context.js';

const msg = (body: string, topic = 't'): SourceMessage => ({ topic, body: Buffer.from(body) });

describe('createTestContext', () => {
  it('records every delivery and acks by default', async () => {
    const ctx = createTestContext({ topics: ['t'] });
    expect(await ctx.deliver(msg('a'))).toEqual(outcomes.delivered());
    await ctx.deliver(msg('é'));
    expect(ctx.bodies()).toEqual(['a', 'é']);
    expect(ctx.messages.map((m) => m.topic)).toEqual(['t', 't']);
    expect(ctx.acked).toEqual(['a', 'é']);
    expect(ctx.deliveries.map((d) => [d.n, d.state])).toEqual([
      [1, 'acked'],
      [2, 'acked'],
    ]);
    expect(ctx.open()).toBe(0);
  });

  it('lets the test decide each outcome, now or later', async () => {
    const later = deferred<ReturnType<typeof outcomes.delivered>>();
    const ctx = createTestContext({
      answer: (_m, n) =>
        n === 1 ? outcomes.failed() : n === 2 ? later.promise : Promise.reject(new Error('boom')),
    });
    expect((await ctx.deliver(msg('x'))).ack).toBe(false);
    const second = ctx.deliver(msg('y'));
    expect(ctx.open()).toBe(1);
    later.resolve(outcomes.delivered('response'));
    expect(Buffer.from((await second).results[0]?.body ?? []).toString()).toBe('response');
    await expect(ctx.deliver(msg('z'))).rejects.toThrow('boom');
    expect(ctx.nacked).toEqual(['x']);
    expect(ctx.acked).toEqual(['y']);
    expect(ctx.deliveries[2]?.state).toBe('rejected');

    ctx.setAnswer(hold);
    const held = [ctx.deliver(msg('h1')), ctx.deliver(msg('h2'))];
    expect(ctx.open()).toBe(2);
    expect(ctx.settle(outcomes.deadLettered())).toBe(2);
    expect((await Promise.all(held)).map((o) => o.status)).toEqual(['dead-lettered', 'dead-lettered']);
    expect(ctx.acked).toEqual(['y', 'h1', 'h2']);
  });

  it('holds deliveries beyond its capacity, like the engine, and says when there is room', async () => {
    const ctx = createTestContext({ capacity: 1, answer: hold });
    expect(ctx.hasCapacity()).toBe(true);
    const first = ctx.deliver(msg('1'));
    expect(ctx.hasCapacity()).toBe(false);
    let room = false;
    const waiting = ctx.waitForCapacity().then(() => (room = true));
    const second = ctx.deliver(msg('2'));
    expect(ctx.deliveries.map((d) => d.state)).toEqual(['open', 'queued']);
    ctx.setAnswer(() => outcomes.delivered());
    ctx.settle(outcomes.delivered()); // settles both; the queued one is not answered by the new answerer first
    await Promise.all([first, second]);
    await waiting;
    expect(room).toBe(true);

    ctx.setCapacity(0);
    expect(ctx.hasCapacity()).toBe(false);
    const queued = ctx.deliver(msg('3'));
    expect(ctx.deliveries[2]?.state).toBe('queued');
    const abort = new AbortController();
    const aborted = ctx.waitForCapacity(abort.signal);
    abort.abort();
    await aborted; // resolves on the caller's signal too
    ctx.setCapacity(Number.POSITIVE_INFINITY);
    expect((await queued).ack).toBe(true);
  });

  it('changes topics and functions, tells listeners until they unsubscribe, and counts them', () => {
    const ctx = createTestContext({ topics: ['a'] });
    const heard: (readonly string[])[] = [];
    const off = ctx.onTopicsChange((t) => heard.push(t));
    const offFns = ctx.onFunctionsChange(() => undefined);
    expect(ctx.listeners()).toEqual({ topics: 1, functions: 1 });
    ctx.setTopics(['a', 'b']);
    expect(ctx.topics()).toEqual(['a', 'b']);
    off();
    offFns();
    ctx.setTopics(['c']);
    expect(heard).toEqual([['a', 'b']]);
    expect(ctx.listeners()).toEqual({ topics: 0, functions: 0 });
    const fn = { name: 'f', namespace: 'ns', address: 'f.ns', topics: ['c'], annotations: { topic: 'c' } };
    let fns: unknown;
    ctx.onFunctionsChange((f) => (fns = f));
    ctx.setFunctions([fn]);
    expect(fns).toEqual([fn]);
    expect(ctx.functions()).toEqual([fn]);
  });

  it('captures fail() and stops like the connector: close() refuses new deliveries, shutdown() rejects open ones', async () => {
    const ctx = createTestContext({ answer: hold });
    const err = new Error('lost the broker');
    ctx.fail(err);
    expect(ctx.failures).toEqual([err]);
    const open = ctx.deliver(msg('open'));
    let waited = false;
    const capacityWait = createTestContext({ capacity: 0 });
    const w = capacityWait.waitForCapacity().then(() => (waited = true));
    capacityWait.close();
    await w;
    expect(waited).toBe(true); // close() wakes capacity waiters, as the engine does

    ctx.close();
    expect(ctx.signal.aborted).toBe(true);
    expect(ctx.closed).toBe(true);
    const refused = await ctx.deliver(msg('late')).catch((e: unknown) => e);
    expect(isShutdownError(refused)).toBe(true);
    expect(ctx.bodies()).toEqual(['open', 'late']); // recorded: a test can see a source delivering after stop
    expect(ctx.open()).toBe(1);
    ctx.shutdown();
    expect(isShutdownError(await open.catch((e: unknown) => e))).toBe(true);
    expect(ctx.deliveries.map((d) => d.state)).toEqual(['rejected', 'rejected']);
  });
});
