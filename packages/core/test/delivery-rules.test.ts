import { startGateway, type TestGateway } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type ConnectorOptions, isShutdownError } from '../src/index.js';
import { recordingConnector, waitFor } from './helpers.js';

// One table of delivery rules, run with and without an ordering key: the engine has one pipeline, and these
// cases are what it must do whichever way a message enters it.

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** `recordingConnector` on `g`, draining for up to 5 s on stop; stopped after the test. */
const setup = (
  g: TestGateway,
  {
    namespace,
    asyncInvocation,
    ...connector
  }: Partial<ConnectorOptions> & { namespace?: string; asyncInvocation?: boolean } = {},
) =>
  recordingConnector(
    g.url,
    {
      controller: {
        ...(namespace === undefined ? {} : { namespace }),
        ...(asyncInvocation === undefined ? {} : { asyncInvocation }),
      },
      connector: { drainTimeout: 5000, ...connector },
    },
    (fn) => cleanups.push(fn),
  );

async function gateway(...args: Parameters<typeof startGateway>): Promise<TestGateway> {
  const g = await startGateway(...args);
  cleanups.push(() => g.close());
  return g;
}

const fns = (...names: string[]) => names.map((name) => ({ name, annotations: { topic: 't' } }));

describe.each([
  ['without an ordering key', undefined],
  ['with an ordering key', 'k'],
])('delivery rules %s', (_label, orderingKey) => {
  const msg = (body: string, extra: Record<string, unknown> = {}) => ({
    topic: 't',
    body: Buffer.from(body),
    ...(orderingKey === undefined ? {} : { orderingKey }),
    ...extra,
  });

  it('success: delivered once, acked', async () => {
    const g = await gateway({ functions: fns('f') });
    const { mem } = await setup(g);
    mem.push(msg('a'));
    await waitFor(() => mem.acked.length === 1);
    expect(mem.outcomes[0]).toMatchObject({ status: 'delivered', ack: true });
    expect(g.invocations('f.openfaas-fn')).toHaveLength(1);
  });

  it('retry then success: 503 twice, then delivered in 3 attempts', async () => {
    const g = await gateway({ functions: fns('f') });
    g.fault('f.openfaas-fn', { status: 503, times: 2 });
    const { mem, results } = await setup(g);
    mem.push(msg('a'));
    await waitFor(() => mem.acked.length === 1);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(3);
    expect(results.map((r) => [r.attempt, r.status, r.final])).toEqual([
      [1, 503, false],
      [2, 503, false],
      [3, 200, true],
    ]);
  });

  it('Retry-After: the next attempt waits at least as long as the gateway asked', async () => {
    const g = await gateway({ functions: fns('f') });
    g.fault('f.openfaas-fn', { status: 429, headers: { 'retry-after': '0.3' }, times: 1 });
    const { mem } = await setup(g);
    mem.push(msg('a'));
    await waitFor(() => mem.acked.length === 1);
    const [first, second] = g.invocations('f.openfaas-fn');
    expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(290);
  });

  it('404: the map is refreshed once; a function gone from it is final (not retried)', async () => {
    const g = await gateway({ functions: fns('f') });
    const { mem, controller, letters } = await setup(g, { onFailure: 'dead-letter' });
    g.removeFunction('f');
    mem.push(msg('a'));
    await waitFor(() => mem.acked.length === 1);
    expect(mem.outcomes[0]?.status).toBe('dead-lettered');
    expect(letters).toHaveLength(1);
    expect(controller.functions()).toHaveLength(0); // refreshed
  });

  it('dead letter: a 400 is not retried, dead-lettered exactly once, then acked', async () => {
    const g = await gateway({ functions: fns('f') });
    g.fault('f.openfaas-fn', { status: 400 });
    const { mem, letters } = await setup(g, { onFailure: 'dead-letter' });
    mem.push(msg('a'));
    await waitFor(() => mem.acked.length === 1);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(1);
    expect(letters.map((l) => [l.function, l.result.status])).toEqual([['f.openfaas-fn', 400]]);
  });

  it('redeliver: a failed message is not acked; the broker redelivers it until it succeeds', async () => {
    const g = await gateway({ functions: fns('f') });
    g.fault('f.openfaas-fn', { status: 500, times: 2 });
    const { mem } = await setup(g, { onFailure: 'redeliver', retry: { maxRetries: 0 } });
    mem.push(msg('a'));
    await waitFor(() => mem.acked.length === 1);
    expect(mem.outcomes.map((o) => o.ack)).toEqual([false, false, true]);
  });

  it('fan-out: one of two functions failing fails the message (not acked); the other is not lost', async () => {
    const g = await gateway({ functions: fns('f', 'g') });
    g.fault('g.openfaas-fn', { status: 400, times: 1 });
    const { mem } = await setup(g, { retry: { maxRetries: 0 } });
    mem.push(msg('a'));
    await waitFor(() => mem.acked.length === 1);
    expect(mem.outcomes[0]).toMatchObject({ status: 'failed', ack: false });
    expect(mem.outcomes[0]?.results.map((r) => r.status).sort()).toEqual([200, 400]);
    expect(mem.outcomes[1]).toMatchObject({ status: 'delivered', ack: true });
  });

  it('fan-out with dead letters: only the failing function is dead-lettered', async () => {
    const g = await gateway({ functions: fns('f', 'g') });
    g.fault('f.openfaas-fn', { status: 400 });
    const { mem, letters } = await setup(g, { onFailure: 'dead-letter', retry: { maxRetries: 0 } });
    mem.push(msg('a'));
    await waitFor(() => mem.acked.length === 1);
    expect(mem.outcomes[0]?.status).toBe('dead-lettered');
    expect(letters.map((l) => l.function)).toEqual(['f.openfaas-fn']);
  });

  it('per-function limit: at most N invocations of a function at once', async () => {
    const g = await gateway({ functions: fns('f') });
    g.fault('f.openfaas-fn', { hang: true });
    const { mem, connector } = await setup(g, { maxInFlightPerFunction: 1 });
    mem.push(msg('a', { orderingKey: undefined }), msg('b', { orderingKey: undefined }));
    await waitFor(() => g.pending() === 1);
    await waitFor(() => connector.pending() === 2);
    expect(g.pending()).toBe(1);
    g.release();
    await waitFor(() => mem.acked.length === 2);
  });

  it('drain: stop waits up to drainTimeout, then what is unsettled rejects with ShutdownError (not acked)', async () => {
    const g = await gateway({ functions: fns('f') });
    g.fault('f.openfaas-fn', { hang: true });
    const { mem, connector } = await setup(g, { drainTimeout: 100 });
    mem.push(msg('a'));
    await waitFor(() => g.pending() === 1);
    await connector.stop();
    expect(mem.acked).toHaveLength(0);
    expect(mem.shutdownRejected).toHaveLength(1);
  });

  it('abort: a kill during the retry back-off rejects with ShutdownError; nothing more is invoked', async () => {
    const g = await gateway({ functions: fns('f') });
    g.fault('f.openfaas-fn', { status: 503 });
    const { mem, connector } = await setup(g, { retry: { minDelay: 60_000, maxDelay: 60_000 } });
    mem.push(msg('a'));
    await waitFor(() => g.invocations('f.openfaas-fn').length === 1);
    await connector.kill();
    expect(mem.acked).toHaveLength(0);
    expect(mem.shutdownRejected).toHaveLength(1);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(1);
  });

  it('async: a 5xx from the gateway (not queued) is retried until it answers 202', async () => {
    const g = await gateway({ functions: fns('f') });
    g.fault('f.openfaas-fn', { status: 500, times: 1 });
    const { mem, results } = await setup(g, { asyncInvocation: true });
    mem.push(msg('a'));
    await waitFor(() => mem.acked.length === 1);
    // Retried within the same delivery (attempt 2), not left to a redelivery of the message.
    expect(results.map((r) => [r.status, r.async, r.attempt])).toEqual([
      [500, true, 1],
      [202, true, 2],
    ]);
    expect(mem.outcomes).toHaveLength(1);
  });

  it('a message naming a function outside the configured namespace invokes nothing', async () => {
    const g = await gateway({ functions: fns('f') });
    const { mem, results } = await setup(g, { namespace: 'openfaas-fn', onFailure: 'dead-letter' });
    mem.push(msg('a', { functions: ['x.other-ns'] }));
    await waitFor(() => mem.acked.length === 1);
    expect(g.invocations()).toHaveLength(0);
    expect(results[0]?.error?.code).toBe('ERR_FUNCTION_NOT_FOUND');
    expect(mem.outcomes[0]?.status).toBe('dead-lettered');
  });
});

it('a deliver() after stop rejects with ShutdownError', async () => {
  const g = await gateway({ functions: fns('f') });
  const { mem, connector } = await setup(g);
  const ctx = mem.ctx;
  await connector.stop();
  const err = await ctx?.deliver({ topic: 't', body: Buffer.from('late') }).catch((e: unknown) => e);
  expect(isShutdownError(err)).toBe(true);
});

it('many messages in retry back-off at once raise no MaxListenersExceededWarning', async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  cleanups.push(async () => {
    process.off('warning', onWarning);
  });
  const g = await gateway({ functions: fns('f') });
  g.fault('f.openfaas-fn', { status: 503, times: 40 });
  const { mem } = await setup(g, { retry: { minDelay: 300, maxDelay: 300 } });
  mem.push(...Array.from({ length: 40 }, (_, i) => ({ topic: 't', body: Buffer.from(String(i)) })));
  await waitFor(() => mem.acked.length === 40);
  expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
});
