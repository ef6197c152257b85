import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type TestGateway } from '@connector/testing';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import {
  type Connector,
  type ConnectorOptions,
  createConnector,
  createController,
  type DeadLetter,
  runConnector,
} from '../src/index.js';
import { freePort, gate, memorySource, parseMetrics, recordingConnector, waitFor } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function gateway(...args: Parameters<typeof startGateway>): Promise<TestGateway> {
  const g = await startGateway(...args);
  cleanups.push(() => g.close());
  return g;
}

/** A gateway whose function `f` (topic `t`) answers each call once `hold` opens. */
const heldGateway = (hold: { promise: Promise<void> }) =>
  gateway({
    functions: [
      {
        name: 'f',
        annotations: { topic: 't' },
        handler: async () => {
          await hold.promise;
          return {};
        },
      },
    ],
  });
const msg = (body: string, extra: Record<string, unknown> = {}) => ({
  topic: 't',
  body: Buffer.from(body),
  ...extra,
});

/** `recordingConnector` on `g` (or `gatewayUrl`), draining for up to 5 s on stop; stopped after the test. */
const setup = (
  g: TestGateway,
  {
    gatewayUrl = g.url,
    rebuildInterval = 60_000,
    ...connector
  }: Partial<ConnectorOptions> & { gatewayUrl?: string; rebuildInterval?: number } = {},
) =>
  recordingConnector(
    gatewayUrl,
    { controller: { rebuildInterval }, connector: { drainTimeout: 5000, ...connector } },
    (fn) => cleanups.push(fn),
  );

describe('delivery with retries', () => {
  it('a function failing twice then succeeding is delivered once, in 3 attempts', async () => {
    const g = await gateway({ functions: [{ name: 'f', annotations: { topic: 't' } }] });
    g.fault('f.openfaas-fn', { status: 503, times: 2 });
    const { mem, results } = await setup(g, { retry: { maxRetries: 3 } });
    mem.push(msg('once'));
    await waitFor(() => mem.acked.length === 1);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(3);
    expect(results.map((r) => [r.attempt, r.status, r.final])).toEqual([
      [1, 503, false],
      [2, 503, false],
      [3, 200, true],
    ]);
    expect(mem.outcomes[0]?.status).toBe('delivered');
    expect(mem.notAcked).toHaveLength(0);
  });

  it('429 with Retry-After: 1 waits at least a second before the next attempt', async () => {
    const g = await gateway({ functions: [{ name: 'f', annotations: { topic: 't' } }] });
    g.fault('f.openfaas-fn', { status: 429, headers: { 'Retry-After': '1' }, times: 1 });
    const { mem } = await setup(g);
    mem.push(msg('x'));
    await waitFor(() => mem.acked.length === 1);
    const [first, second] = g.invocations('f.openfaas-fn');
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(1000);
  });

  it('a 400 is not retried', async () => {
    const g = await gateway({
      functions: [{ name: 'f', annotations: { topic: 't' }, handler: () => ({ status: 400 }) }],
    });
    const { mem } = await setup(g, { retry: { maxRetries: 5 }, onFailure: 'dead-letter' });
    mem.push(msg('bad'));
    await waitFor(() => mem.outcomes.length === 1);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(1);
    expect(mem.outcomes[0]).toMatchObject({
      status: 'dead-lettered',
      ack: true,
      results: [{ status: 400, attempt: 1 }],
    });
  });

  it('network errors and timeouts are retried', async () => {
    const g = await gateway({ functions: [{ name: 'f', annotations: { topic: 't' } }] });
    g.fault('f.openfaas-fn', { drop: true, times: 2 });
    const { mem } = await setup(g);
    mem.push(msg('x'));
    await waitFor(() => mem.acked.length === 1);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(3);
  });

  it('exhausted retries reach the dead-letter handler exactly once, then the message is acked', async () => {
    const g = await gateway({ functions: [{ name: 'f', annotations: { topic: 't' } }] });
    g.fault('f.openfaas-fn', { status: 503 });
    const letters: DeadLetter[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'dlq-'));
    onTestFinished(() => rmSync(dir, { recursive: true }));
    const file = join(dir, 'dead.jsonl');
    const { mem } = await setup(g, {
      retry: { maxRetries: 2 },
      onFailure: 'dead-letter',
      deadLetter: (l) => {
        letters.push(l);
      },
      deadLetterFile: file,
    });
    mem.push(msg('doomed', { id: 'm-1' }));
    await waitFor(() => mem.acked.length === 1);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(3);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({
      function: 'f.openfaas-fn',
      source: 'memory',
      result: { status: 503, attempt: 3 },
    });
    expect(mem.outcomes[0]).toMatchObject({ status: 'dead-lettered', ack: true });
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      function: 'f.openfaas-fn',
      topic: 't',
      id: 'm-1',
      status: 503,
      attempts: 3,
    });
    expect(Buffer.from(lines[0].bodyBase64, 'base64').toString()).toBe('doomed');
  });

  it('a dead-letter handler that fails leaves the message un-acked', async () => {
    const g = await gateway({
      functions: [{ name: 'f', annotations: { topic: 't' }, handler: () => ({ status: 500 }) }],
    });
    const { mem } = await setup(g, {
      retry: { maxRetries: 0 },
      onFailure: 'dead-letter',
      deadLetter: () => Promise.reject(new Error('dlq down')),
    });
    mem.push(msg('x'));
    await waitFor(() => mem.notAcked.length >= 1);
    expect(mem.acked).toHaveLength(0);
  });

  it('redeliver mode leaves a failed message to the broker, which redelivers it until it succeeds', async () => {
    const g = await gateway({ functions: [{ name: 'f', annotations: { topic: 't' } }] });
    g.fault('f.openfaas-fn', { status: 500, times: 2 });
    const { mem } = await setup(g, { retry: { maxRetries: 0 }, onFailure: 'redeliver' });
    mem.push(msg('x'));
    await waitFor(() => mem.acked.length === 1);
    expect(mem.notAcked).toHaveLength(2);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(3);
  });

  it('a 404 refreshes the topic map once and retries when the function is still mapped', async () => {
    const g = await gateway({ functions: [{ name: 'f', annotations: { topic: 't' } }] });
    g.fault('f.openfaas-fn', { status: 404, times: 1 });
    const { mem } = await setup(g, { retry: { maxRetries: 3 } });
    const syncs = () => g.requests.filter((r) => r.path === '/system/functions').length;
    const before = syncs();
    mem.push(msg('x'));
    await waitFor(() => mem.acked.length === 1);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(2);
    expect(syncs()).toBe(before + 1);
  });

  it('a 404 refreshes the topic map once; a function gone from the map is final', async () => {
    const g = await gateway({ functions: [{ name: 'f', annotations: { topic: 't' } }] });
    const { mem, controller } = await setup(g, { retry: { maxRetries: 3 }, onFailure: 'dead-letter' });
    g.removeFunction('f');
    mem.push(msg('x'));
    await waitFor(() => mem.outcomes.length === 1);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(1);
    expect(controller.match('t')).toEqual([]);
    expect(mem.outcomes[0]?.status).toBe('dead-lettered');
    expect(mem.outcomes[0]?.results[0]?.error?.code).toBe('ERR_FUNCTION_NOT_FOUND');
  });

  it('a message with no subscriber settles at once as unrouted and is acked', async () => {
    const g = await gateway({ functions: [{ name: 'f', annotations: { topic: 't' } }] });
    const { mem } = await setup(g);
    mem.push({ topic: 'nobody', body: Buffer.from('x') });
    await waitFor(() => mem.acked.length === 1);
    expect(mem.outcomes[0]).toMatchObject({ status: 'unrouted', ack: true, results: [] });
    expect(g.invocations()).toHaveLength(0);
  });

  it('invokes by name when the message names its functions (cron), forwarding trace context', async () => {
    const g = await gateway({ functions: [{ name: 'f', annotations: { topic: 'other' } }] });
    const { mem } = await setup(g);
    mem.push(
      msg('x', {
        functions: ['f'],
        headers: {
          traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
          tracestate: 'k=v',
        },
      }),
    );
    await waitFor(() => mem.acked.length === 1);
    const req = g.invocations('f.openfaas-fn')[0]!;
    expect(req.headers['traceparent']).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(req.headers['tracestate']).toBe('k=v');
  });
});

describe('flow control', () => {
  it('in-flight never exceeds maxInFlight while the gateway stalls, and the source is held back', async () => {
    const hold = gate();
    let concurrent = 0;
    let peak = 0;
    const g = await gateway({
      functions: [
        {
          name: 'slow',
          annotations: { topic: 't' },
          handler: async () => {
            peak = Math.max(peak, ++concurrent);
            await hold.promise;
            concurrent--;
            return { body: 'ok' };
          },
        },
      ],
    });
    const { mem, connector } = await setup(g, { maxInFlight: 4 });
    for (let i = 0; i < 40; i++) mem.push(msg(`m${i}`));
    await waitFor(() => concurrent === 4, { message: '4 invocations held' });
    await waitFor(() => mem.ctx?.hasCapacity() === false);
    expect(connector.inFlight()).toBe(4);
    // The source is not asked for more: most messages are still queued at the broker.
    expect(mem.queue.length).toBeGreaterThanOrEqual(40 - 4 - 1);
    hold.open();
    await waitFor(() => mem.acked.length === 40, { message: 'all 40 delivered' });
    expect(peak).toBe(4);
    expect(g.invocations('slow.openfaas-fn')).toHaveLength(40);
  });

  it('limits in-flight per function', async () => {
    const hold = gate();
    const concurrent = { a: 0, b: 0 };
    const peak = { a: 0, b: 0 };
    const handler = (k: 'a' | 'b') => async () => {
      peak[k] = Math.max(peak[k], ++concurrent[k]);
      await hold.promise;
      concurrent[k]--;
      return {};
    };
    const g = await gateway({
      functions: [
        { name: 'a', annotations: { topic: 't' }, handler: handler('a') },
        { name: 'b', annotations: { topic: 'u' }, handler: handler('b') },
      ],
    });
    const { mem } = await setup(g, { maxInFlight: 10, maxInFlightPerFunction: 2 });
    for (let i = 0; i < 5; i++) mem.push(msg(`a${i}`), { topic: 'u', body: Buffer.from(`b${i}`) });
    await waitFor(() => concurrent.a === 2 && concurrent.b === 2);
    hold.open();
    await waitFor(() => mem.acked.length === 10);
    expect(peak).toEqual({ a: 2, b: 2 });
  });

  it('keeps order within an ordering key and runs different keys concurrently', async () => {
    const seen: string[] = [];
    const holdA = gate();
    const g = await gateway({
      functions: [
        {
          name: 'f',
          annotations: { topic: 't' },
          handler: async (req) => {
            const body = req.body.toString();
            if (body === 'a0') await holdA.promise;
            seen.push(body);
            return {};
          },
        },
      ],
    });
    const { mem } = await setup(g, { maxInFlight: 8 });
    for (let i = 0; i < 5; i++)
      mem.push(msg(`a${i}`, { orderingKey: 'A' }), msg(`b${i}`, { orderingKey: 'B' }));
    // Key B completes while key A is blocked on its first message.
    await waitFor(() => seen.filter((s) => s.startsWith('b')).length === 5);
    expect(seen.some((s) => s.startsWith('a'))).toBe(false);
    holdA.open();
    await waitFor(() => mem.acked.length === 10);
    expect(seen.filter((s) => s.startsWith('a'))).toEqual(['a0', 'a1', 'a2', 'a3', 'a4']);
    expect(seen.filter((s) => s.startsWith('b'))).toEqual(['b0', 'b1', 'b2', 'b3', 'b4']);
  });
});

describe('shutdown', () => {
  it('stop() lets in-flight work finish and acks it; later messages are refused and not acked', async () => {
    const hold = gate();
    const g = await heldGateway(hold);
    const { mem, connector } = await setup(g, { maxInFlight: 2 });
    mem.push(msg('1'), msg('2'), msg('3'));
    await waitFor(() => g.pending() === 2);
    const stopping = connector.stop();
    await expect(mem.ctx?.deliver(msg('late')) ?? Promise.reject(new Error('no ctx'))).rejects.toMatchObject({
      code: 'ERR_SHUTDOWN',
    });
    hold.open();
    await stopping;
    expect(mem.acked.map((m) => Buffer.from(m.body).toString()).sort()).toEqual(['1', '2']);
    expect(mem.queue.map((m) => Buffer.from(m.body).toString())).toEqual(['3']);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(2);
  });

  it('after drainTimeout, unsettled deliveries reject with ShutdownError and are not acked', async () => {
    const g = await gateway({ functions: [{ name: 'f', annotations: { topic: 't' } }] });
    g.fault('f.openfaas-fn', { hang: true });
    const { mem, connector } = await setup(g, { drainTimeout: 200 });
    mem.push(msg('stuck'));
    await waitFor(() => g.pending() === 1);
    await connector.stop();
    expect(mem.acked).toHaveLength(0);
    expect(mem.shutdownRejected).toHaveLength(1);
  });

  it('messages waiting in retry back-off are not acked when killed', async () => {
    const g = await gateway({ functions: [{ name: 'f', annotations: { topic: 't' } }] });
    g.fault('f.openfaas-fn', { status: 503 });
    const { mem, connector } = await setup(g, {
      retry: { maxRetries: 100, minDelay: 10_000, maxDelay: 10_000 },
    });
    mem.push(msg('x'));
    await waitFor(() => g.invocations().length === 1);
    await connector.kill();
    expect(mem.acked).toHaveLength(0);
    expect(mem.shutdownRejected).toHaveLength(1);
  });

  it('SIGTERM drains and exits 0; a second signal exits 1 at once', async () => {
    const hold = gate();
    const g = await heldGateway(hold);
    const controller = createController({ gatewayUrl: g.url });
    const mem = memorySource();
    const exits: number[] = [];
    const connector = await runConnector({
      controller,
      source: mem.source,
      exit: (code) => exits.push(code),
    });
    cleanups.push(() => connector.stop());
    mem.push(msg('in-flight'));
    await waitFor(() => g.pending() === 1);
    process.emit('SIGTERM', 'SIGTERM');
    await waitFor(() => !connector.ready());
    expect(exits).toEqual([]);
    hold.open();
    await waitFor(() => exits.length === 1);
    expect(exits).toEqual([0]);
    expect(mem.acked).toHaveLength(1);

    const hold2 = gate();
    g.updateFunction('f', {
      handler: async () => {
        await hold2.promise;
        return {};
      },
    });
    const mem2 = memorySource();
    const exits2: number[] = [];
    const c2 = await runConnector({
      controller: createController({ gatewayUrl: g.url }),
      source: mem2.source,
      exit: (code) => exits2.push(code),
    });
    cleanups.push(() => c2.kill());
    mem2.push(msg('stuck'));
    await waitFor(() => g.pending() === 1);
    process.emit('SIGINT', 'SIGINT');
    process.emit('SIGINT', 'SIGINT');
    expect(exits2).toEqual([1]);
    hold2.open();

    // A programmatic stop detaches the handlers too.
    const before = process.listenerCount('SIGTERM');
    const c3 = await runConnector({
      controller: createController({ gatewayUrl: g.url }),
      source: memorySource().source,
      exit: () => undefined,
    });
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    await c3.stop();
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });
});

describe('source supervision', () => {
  it('a source that fails to start is restarted with back-off', async () => {
    const g = await gateway({ functions: [{ name: 'f', annotations: { topic: 't' } }] });
    const controller = createController({ gatewayUrl: g.url });
    const mem = memorySource();
    mem.failNextStarts(2);
    const connector = createConnector({
      controller,
      source: mem.source,
      restartDelay: { min: 10, max: 50 },
      http: { port: 0 },
    });
    cleanups.push(() => connector.stop());
    await connector.start();
    await waitFor(() => mem.ctx !== undefined, { message: 'third start' });
    expect(mem.starts).toBe(3);
    mem.push(msg('after restart'));
    await waitFor(() => mem.acked.length === 1);
    const m = parseMetrics(await (await fetch(`${connector.httpUrl}/metrics`)).text());
    expect(m.get('connector_source_restarts_total{source="memory"}')).toBe(2);
  });

  it('ctx.fail() restarts the source', async () => {
    const g = await gateway({ functions: [{ name: 'f', annotations: { topic: 't' } }] });
    const { mem } = await setup(g, { restartDelay: { min: 10, max: 10 } });
    const first = mem.ctx!;
    first.fail(new Error('connection reset'));
    expect(first.signal.aborted).toBe(true);
    await waitFor(() => mem.starts === 2 && mem.ctx !== undefined);
    mem.push(msg('x'));
    await waitFor(() => mem.acked.length === 1);
  });
});

describe('observability', () => {
  it('/readyz is 503 while the gateway is down at start and 200 once it is up; /healthz always 200', async () => {
    const port = await freePort();
    const controller = createController({ gatewayUrl: `http://127.0.0.1:${port}`, rebuildInterval: 200 });
    const mem = memorySource();
    const connector: Connector = createConnector({
      controller,
      source: mem.source,
      http: { port: 0, host: '127.0.0.1' },
    });
    cleanups.push(() => connector.stop());
    await connector.start();
    const ready1 = await fetch(`${connector.httpUrl}/readyz`);
    expect(ready1.status).toBe(503);
    expect(JSON.stringify(await ready1.json())).toContain('never synced');
    expect((await fetch(`${connector.httpUrl}/healthz`)).status).toBe(200);
    await gateway({ port, functions: [{ name: 'f', annotations: { topic: 't' } }] });
    await waitFor(async () => (await fetch(`${connector.httpUrl}/readyz`)).status === 200, {
      message: 'ready',
    });
    expect((await fetch(`${connector.httpUrl}/nope`)).status).toBe(404);
  });

  it('/metrics is Prometheus text whose counters match what happened', async () => {
    const g = await gateway({
      functions: [
        { name: 'ok', annotations: { topic: 't' } },
        { name: 'flaky', annotations: { topic: 'u' } },
      ],
    });
    g.fault('flaky.openfaas-fn', { status: 503, times: 1 });
    const { mem, connector } = await setup(g, { http: { port: 0, host: '127.0.0.1' } });
    for (let i = 0; i < 5; i++) mem.push(msg(`${i}`));
    mem.push({ topic: 'u', body: Buffer.from('f') }, { topic: 'nobody', body: Buffer.from('n') });
    await waitFor(() => mem.acked.length === 7);
    const res = await fetch(`${connector.httpUrl}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const m = parseMetrics(await res.text());
    expect(m.get('connector_invocations_total{function="ok.openfaas-fn",status="200"}')).toBe(5);
    expect(m.get('connector_invocations_total{function="flaky.openfaas-fn",status="503"}')).toBe(1);
    expect(m.get('connector_invocations_total{function="flaky.openfaas-fn",status="200"}')).toBe(1);
    expect(m.get('connector_retries_total{function="flaky.openfaas-fn",reason="status_503"}')).toBe(1);
    expect(m.get('connector_invocation_duration_seconds_count{function="ok.openfaas-fn"}')).toBe(5);
    expect(m.get('connector_messages_received_total{source="memory"}')).toBe(7);
    expect(m.get('connector_messages_matched_total{source="memory",subscription="t"}')).toBe(5);
    expect(m.get('connector_unrouted_messages_total{source="memory"}')).toBe(1);
    expect(m.get('connector_deliveries_total{status="delivered"}')).toBe(6);
    expect(m.get('connector_deliveries_total{status="unrouted"}')).toBe(1);
    expect(m.get('connector_inflight_invocations')).toBe(0);
    expect(m.get('connector_topic_map_functions')).toBe(2);
    expect(m.get('connector_topic_map_topics')).toBe(2);
    expect(m.get('connector_topic_map_last_sync_timestamp_seconds')).toBeGreaterThan(1_700_000_000);
    expect(m.get('connector_source_connected{source="memory"}')).toBe(1);
  });
});

describe('options validation', () => {
  it.each([
    [{ maxInFlight: 0 }, 'maxInFlight'],
    [{ maxInFlight: 1.5 }, 'maxInFlight'],
    [{ maxInFlightPerFunction: 0 }, 'maxInFlightPerFunction'],
    [{ drainTimeout: -1 }, 'drainTimeout'],
    [{ retry: { maxRetries: -1 } }, 'retry.maxRetries'],
    [{ onFailure: 'drop' as 'redeliver' }, 'onFailure'],
  ])('%j fails naming %s', (opts, setting) => {
    const controller = createController({ gatewayUrl: 'http://127.0.0.1:1' });
    expect(() => createConnector({ controller, source: memorySource().source, ...opts })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', setting }),
    );
  });
});

describe('startConnectorFromEnv', () => {
  it('reads the env, builds the source from it, applies controller overrides and runs', async () => {
    const g = await gateway({ functions: [{ name: 'f', annotations: { topic: 'sensors/+' } }] });
    const mem = memorySource();
    const seen: string[] = [];
    const { startConnectorFromEnv, noopLogger } = await import('../src/index.js');
    const connector = await startConnectorFromEnv({
      name: 'env-connector',
      env: { gateway_url: g.url, http_port: '0', source_name: 'from-env' },
      source: (env) => {
        seen.push(env['source_name'] as string);
        return mem.source;
      },
      controller: { topicMatcher: 'mqtt' },
      signals: false,
      logger: noopLogger,
    });
    cleanups.push(() => connector.stop());
    mem.push({ topic: 'sensors/kitchen', body: Buffer.from('21') });
    await waitFor(() => mem.acked.length === 1);
    expect(seen).toEqual(['from-env']);
    expect(g.invocations('f.openfaas-fn')[0]?.headers['x-connector']).toBe('env-connector');
    expect(connector.httpUrl).toBeUndefined(); // http_port=0 disables the endpoint
  });
});

describe('before the first topic-map sync', () => {
  it('does not ack a message that matched nothing because no map is known yet', async () => {
    const port = await freePort();
    const controller = createController({ gatewayUrl: `http://127.0.0.1:${port}`, rebuildInterval: 200 });
    const mem = memorySource();
    const connector = createConnector({ controller, source: mem.source });
    cleanups.push(() => connector.stop());
    await connector.start();
    mem.push(msg('early'));
    await waitFor(() => mem.notAcked.length >= 1);
    expect(mem.acked).toHaveLength(0);
    expect(mem.outcomes[0]).toMatchObject({ status: 'failed', ack: false });
    const g = await gateway({ port, functions: [{ name: 'f', annotations: { topic: 't' } }] });
    await waitFor(() => mem.acked.length === 1, { timeout: 15_000 });
    expect(g.invocations('f.openfaas-fn')[0]?.body.toString()).toBe('early');
  });
});
