import { memoryLogger, startGateway, type TestGateway } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { AdaptiveLimit } from '../src/adaptive.js';
import { type ConnectorOptions, DEFAULT_RETRY, type FunctionInfo, Policies } from '../src/index.js';
import { Semaphore } from '../src/semaphore.js';
import { recordingConnector, waitFor } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function gateway(...args: Parameters<typeof startGateway>): Promise<TestGateway> {
  const g = await startGateway(...args);
  cleanups.push(() => g.close());
  return g;
}

const setup = (g: TestGateway, opts: Partial<ConnectorOptions> = {}) =>
  recordingConnector(g.url, { connector: opts }, (c) => cleanups.push(c));

const msg = (body: string, extra: Record<string, unknown> = {}) => ({
  topic: 't',
  body: Buffer.from(body),
  ...extra,
});
const fn = (annotations: Record<string, string>): FunctionInfo => ({
  name: 'f',
  namespace: 'openfaas-fn',
  address: 'f.openfaas-fn',
  topics: ['t'],
  annotations,
});

describe('Policies (annotations → per-function policy)', () => {
  const defaults = {
    retry: DEFAULT_RETRY,
    maxInFlightPerFunction: undefined,
    onFailure: 'redeliver',
    adaptive: false,
  } as const;

  it('reads the OpenFaaS retry annotations and ours; no annotation means the defaults', () => {
    const p = new Policies(defaults, memoryLogger());
    expect(p.of(fn({}))).toBe(p.defaults);
    const policy = p.of(
      fn({
        'com.openfaas.retry.attempts': '5',
        'com.openfaas.retry.codes': '429 500, 503',
        'com.openfaas.retry.min_wait': '250ms',
        'com.openfaas.retry.max_wait': '1m',
        'connector.dev/max-inflight': '3',
        'connector.dev/on-failure': 'dead-letter',
        'connector.dev/timeout': '2s',
        'connector.dev/max-age': '1h',
        'connector.dev/adaptive': 'true',
      }),
    );
    expect(policy).toMatchObject({
      maxRetries: 4,
      minDelay: 250,
      maxDelay: 60_000,
      maxInFlight: 3,
      onFailure: 'dead-letter',
      timeout: 2000,
      maxAge: 3_600_000,
      adaptive: true,
    });
    expect([...policy.retryOn].sort()).toEqual([429, 500, 503]);
  });

  it('an invalid value is warned once per function and value; the default applies', () => {
    const log = memoryLogger();
    const p = new Policies(defaults, log);
    const bad = { 'com.openfaas.retry.attempts': 'lots', 'connector.dev/on-failure': 'drop' };
    expect(p.of(fn(bad))).toMatchObject({ maxRetries: 3, onFailure: 'redeliver' });
    p.of(fn(bad)); // a new map entry with the same values (a rebuild): not warned again
    const warnings = log.lines.filter((l) => l.msg === 'invalid annotation ignored; the default applies');
    expect(warnings.map((w) => (w.obj as { annotation: string }).annotation).sort()).toEqual([
      'com.openfaas.retry.attempts',
      'connector.dev/on-failure',
    ]);
  });
});

describe('per-function delivery policy against the test gateway', () => {
  it('com.openfaas.retry.attempts and .codes: retried only on the listed codes, as often as allowed', async () => {
    const g = await gateway({
      functions: [
        {
          name: 'f',
          annotations: { topic: 't', 'com.openfaas.retry.attempts': '2', 'com.openfaas.retry.codes': '500' },
        },
        { name: 'g', annotations: { topic: 'u', 'com.openfaas.retry.codes': '500' } },
      ],
    });
    g.fault('f.openfaas-fn', { status: 500 });
    g.fault('g.openfaas-fn', { status: 503 });
    const { mem } = await setup(g, { onFailure: 'dead-letter' });
    mem.push(msg('a'), msg('b', { topic: 'u' }));
    await waitFor(() => mem.acked.length === 2);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(2); // 2 attempts in all
    expect(g.invocations('g.openfaas-fn')).toHaveLength(1); // 503 is not in its codes
  });

  it('connector.dev/on-failure overrides the connector default per function', async () => {
    const g = await gateway({
      functions: [{ name: 'f', annotations: { topic: 't', 'connector.dev/on-failure': 'dead-letter' } }],
    });
    g.fault('f.openfaas-fn', { status: 400 });
    const { mem, letters } = await setup(g, { onFailure: 'redeliver' });
    mem.push(msg('a'));
    await waitFor(() => mem.acked.length === 1);
    expect(mem.outcomes[0]?.status).toBe('dead-lettered');
    expect(letters).toHaveLength(1);
  });

  it('connector.dev/max-inflight limits that function only', async () => {
    const g = await gateway({
      functions: [
        { name: 'f', annotations: { topic: 't', 'connector.dev/max-inflight': '1' } },
        { name: 'g', annotations: { topic: 'u' } },
      ],
    });
    g.fault('f.openfaas-fn', { hang: true });
    g.fault('g.openfaas-fn', { hang: true });
    const { mem, connector } = await setup(g, { drainTimeout: 100 });
    mem.push(msg('a'), msg('b'), msg('c', { topic: 'u' }), msg('d', { topic: 'u' }));
    await waitFor(() => connector.pending() === 4 && g.pending() === 3);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(1);
    expect(g.invocations('g.openfaas-fn')).toHaveLength(2);
    g.release();
    await waitFor(() => mem.acked.length === 4);
  });

  it('connector.dev/timeout: the invocation fails at the function’s own deadline', async () => {
    const g = await gateway({
      functions: [{ name: 'f', annotations: { topic: 't', 'connector.dev/timeout': '100ms' } }],
    });
    g.fault('f.openfaas-fn', { delay: 2000 });
    const { mem, results } = await setup(g, { retry: { maxRetries: 0 }, onFailure: 'dead-letter' });
    mem.push(msg('a'));
    await waitFor(() => mem.acked.length === 1);
    expect(results[0]?.error?.code).toBe('ERR_TIMEOUT');
  });

  it('connector.dev/max-age: an older message is dead-lettered without an invocation, whatever on-failure says', async () => {
    const g = await gateway({
      functions: [{ name: 'f', annotations: { topic: 't', 'connector.dev/max-age': '1m' } }],
    });
    const { mem, letters } = await setup(g, { onFailure: 'redeliver' });
    mem.push(msg('old', { timestamp: Date.now() - 120_000 }), msg('new', { timestamp: Date.now() }));
    await waitFor(() => mem.acked.length === 2);
    expect(g.invocations('f.openfaas-fn').map((r) => r.body.toString())).toEqual(['new']);
    expect(letters.map((l) => [Buffer.from(l.message.body).toString(), l.result.error?.code])).toEqual([
      ['old', 'ERR_MESSAGE_EXPIRED'],
    ]);
  });

  it('a change of annotations between rebuilds applies without a restart', async () => {
    const g = await gateway({
      functions: [{ name: 'f', annotations: { topic: 't', 'com.openfaas.retry.attempts': '1' } }],
    });
    g.fault('f.openfaas-fn', { status: 503 });
    const { mem, controller } = await setup(g, { onFailure: 'dead-letter' });
    mem.push(msg('a'));
    await waitFor(() => mem.acked.length === 1);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(1);
    g.updateFunction('f', { annotations: { topic: 't', 'com.openfaas.retry.attempts': '3' } });
    await controller.refresh();
    mem.push(msg('b'));
    await waitFor(() => mem.acked.length === 2);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(4); // 1 + 3
  });
});

describe('outcome signalled by the function', () => {
  it('X-Connector-Outcome: dead-letter dead-letters at once, whatever the status and on-failure', async () => {
    const g = await gateway({
      functions: [
        {
          name: 'f',
          annotations: { topic: 't' },
          handler: (req) => ({
            status: req.body.toString() === 'bad-200' ? 200 : 503,
            headers: { 'x-connector-outcome': 'dead-letter' },
          }),
        },
      ],
    });
    const { mem, letters } = await setup(g, { onFailure: 'redeliver' });
    mem.push(msg('bad-200'), msg('bad-503'));
    await waitFor(() => mem.acked.length === 2);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(2); // no retry, no redelivery
    expect(letters.map((l) => l.result.error?.code)).toEqual([
      'ERR_FUNCTION_REJECTED',
      'ERR_FUNCTION_REJECTED',
    ]);
  });

  it('a 2xx without the header is never retried', async () => {
    const g = await gateway({ functions: [{ name: 'f', annotations: { topic: 't' } }] });
    const { mem } = await setup(g);
    mem.push(msg('a'));
    await waitFor(() => mem.acked.length === 1);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(1);
  });
});

describe('adaptive concurrency', () => {
  it('AdaptiveLimit: rises by one per window of successes up to the max, falls to three quarters on overload', () => {
    const s = new Semaphore(2);
    const a = new AdaptiveLimit(s, 8);
    for (let i = 0; i < 2; i++) a.success();
    expect(a.limit).toBe(3);
    for (let i = 0; i < 100; i++) a.success();
    expect(a.limit).toBe(8);
    a.overload();
    expect(a.limit).toBe(6);
    a.overload(); // same window: one signal
    expect(a.limit).toBe(6);
    for (let i = 0; i < 7; i++) a.success(); // a window later (and one step up: 7)
    expect(a.limit).toBe(7);
    a.overload();
    expect(a.limit).toBe(5);
  });

  it('a function that admits 2 at a time: every message delivered, none dead-lettered, the limit is a metric', async () => {
    let running = 0;
    const g = await gateway({
      functions: [
        {
          name: 'f',
          annotations: { topic: 't', 'connector.dev/adaptive': 'true' },
          handler: async () => {
            if (running >= 2) return { status: 429 };
            running++;
            await new Promise((r) => setTimeout(r, 5));
            running--;
            return { status: 200 };
          },
        },
      ],
    });
    const { mem, letters, connector } = await setup(g, { maxInFlight: 16, onFailure: 'dead-letter' });
    mem.push(...Array.from({ length: 60 }, (_, i) => msg(String(i))));
    await waitFor(() => mem.acked.length === 60, { timeout: 30_000 });
    expect(letters).toHaveLength(0);
    expect(mem.outcomes.every((o) => o.status === 'delivered')).toBe(true);
    const text = await connector.metrics.metrics();
    const limit = Number(/connector_adaptive_limit\{function="f.openfaas-fn"\} (\d+)/.exec(text)?.[1]);
    expect(limit).toBeGreaterThanOrEqual(1);
    expect(limit).toBeLessThanOrEqual(16);
    expect(text).toMatch(/connector_retries_total\{function="f.openfaas-fn",reason="throttled"\} \d+/);
  });

  it('a throttled message queues for the function again instead of sleeping the back-off with a slot', async () => {
    let running = 0;
    let peak = 0;
    const g = await gateway({
      functions: [
        {
          name: 'f',
          annotations: { topic: 't', 'connector.dev/adaptive': 'true' },
          handler: async () => {
            if (running >= 3) return { status: 429 };
            peak = Math.max(peak, ++running);
            await new Promise((r) => setTimeout(r, 10));
            running--;
            return { status: 200 };
          },
        },
      ],
    });
    // A back-off of a minute: any throttled message that slept it would hold the drain far past the deadline.
    const retry = { maxRetries: 3, minDelay: 60_000, maxDelay: 60_000, retryOnStatus: [429] };
    const { mem, letters } = await setup(g, { maxInFlight: 32, retry, onFailure: 'dead-letter' });
    mem.push(...Array.from({ length: 80 }, (_, i) => msg(String(i))));
    await waitFor(() => mem.acked.length === 80, { timeout: 20_000 });
    expect(letters).toHaveLength(0);
    expect(mem.outcomes.every((o) => o.status === 'delivered')).toBe(true);
    expect(peak).toBeLessThanOrEqual(3);
  });
});
