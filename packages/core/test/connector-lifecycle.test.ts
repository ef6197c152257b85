import { startGateway, type TestGateway } from '@connector/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type Connector,
  type ConnectorOptions,
  createConnector,
  createController,
  runConnector,
  type Source,
  type SourceContext,
} from '../src/index.js';
import { memorySource, waitFor } from './helpers.js';

// The connector's lifecycle and health rules one by one: readiness reasons, the HTTP endpoint, source restarts,
// topic-change listeners, option checks, signal handlers (mutation testing found these open).

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function gateway(): Promise<TestGateway> {
  const g = await startGateway({ functions: [{ name: 'f', annotations: { topic: 't' } }] });
  cleanups.push(() => g.close());
  return g;
}

/** A source without health(): the connector tracks it (running, last fail()). */
function bareSource() {
  const s = { ctx: undefined as SourceContext | undefined, starts: 0, stops: 0 };
  const source: Source = {
    name: 'bare',
    async start(ctx) {
      s.starts++;
      s.ctx = ctx;
    },
    async stop() {
      s.stops++;
    },
  };
  return { source, s };
}

async function connector(g: TestGateway, opts: Partial<ConnectorOptions> = {}): Promise<Connector> {
  const controller = createController({ gatewayUrl: g.url, rebuildInterval: 60_000 });
  const c = createConnector({ controller, source: memorySource().source, ...opts });
  cleanups.push(() => c.stop());
  await c.start();
  return c;
}

describe('connector lifecycle', () => {
  it('readiness: not started, then ready; a second start is refused', async () => {
    const g = await gateway();
    const controller = createController({ gatewayUrl: g.url });
    const c = createConnector({ controller, source: memorySource().source });
    cleanups.push(() => c.stop());
    expect(c.ready()).toBe(false);
    expect(c.readiness()).toEqual(['not started', 'topic map never synced', 'source memory not connected']);
    await c.start();
    expect(c.readiness()).toEqual([]);
    expect(c.ready()).toBe(true);
    await expect(c.start()).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: 'connector already started',
    });
    await c.stop();
    expect(c.readiness()[0]).toBe('stopping');
  });

  it('/healthz, /readyz (JSON with reasons, map and source) and 404; httpUrl on 127.0.0.1 for 0.0.0.0', async () => {
    const g = await gateway();
    const c = await connector(g, { http: { port: 0 } });
    expect(c.httpUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const h = await fetch(`${c.httpUrl}/healthz?probe=1`);
    expect(h.status).toBe(200);
    expect(h.headers.get('content-type')).toBe('text/plain');
    expect(await h.text()).toBe('ok\n');
    const r = await fetch(`${c.httpUrl}/readyz`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(await r.json()).toEqual({
      ready: true,
      reasons: [],
      map: expect.objectContaining({ synced: true, functions: 1 }),
      source: { connected: true },
    });
    const n = await fetch(`${c.httpUrl}/other`);
    expect(n.status).toBe(404);
    expect(await n.text()).toBe('not found\n');
  });

  it('a source without health(): connected while running; fail() shows its error until the restart succeeds', async () => {
    const g = await gateway();
    const { source, s } = bareSource();
    const controller = createController({ gatewayUrl: g.url });
    const c = createConnector({
      controller,
      source,
      restartDelay: { min: 300, max: 300 },
      http: { port: 0, host: '127.0.0.1' },
    });
    cleanups.push(() => c.stop());
    await c.start();
    expect(c.httpUrl?.startsWith('http://127.0.0.1:')).toBe(true);
    expect(c.ready()).toBe(true);
    const first = s.ctx as SourceContext;
    const failedAt = Date.now();
    first.fail(new Error('connection reset'));
    first.fail(new Error('again')); // aborted already: ignored, no second restart
    expect(first.signal.aborted).toBe(true);
    expect(c.readiness()).toEqual([]); // connected stays `running`; the error is kept for /readyz
    const body = (await (await fetch(`${c.httpUrl}/readyz`)).json()) as { source: unknown };
    expect(body.source).toEqual({ connected: true, lastError: 'connection reset' });
    await waitFor(() => s.starts === 2);
    expect(Date.now() - failedAt).toBeGreaterThanOrEqual(280); // restartDelay.min
    expect(s.stops).toBe(1);
    const after = (await (await fetch(`${c.httpUrl}/readyz`)).json()) as { source: unknown };
    expect(after.source).toEqual({ connected: true });
    const m = await (await fetch(`${c.httpUrl}/metrics`)).text();
    expect(m).toContain('connector_source_restarts_total{source="bare"} 1');
  });

  it('a map not synced for max(3 × rebuildInterval, 10 s) is stale: not ready, with its age and the last error', async () => {
    const g = await gateway();
    const check = async (rebuildInterval: number, maxAge: number) => {
      const controller = createController({ gatewayUrl: g.url, rebuildInterval });
      const c = createConnector({ controller, source: memorySource().source });
      cleanups.push(() => c.stop());
      await c.start();
      const syncedAt = controller.status().lastSyncAt ?? 0;
      // Only Date is faked (timers run for real), and each step is synchronous: no rebuild lands in between.
      vi.useFakeTimers({ toFake: ['Date'] });
      try {
        vi.setSystemTime(syncedAt + maxAge);
        expect(c.readiness()).toEqual([]);
        vi.setSystemTime(syncedAt + maxAge + 1);
        expect(c.readiness()).toEqual([`topic map stale: last sync ${maxAge / 1000}s ago`]);
        expect(c.ready()).toBe(false);
      } finally {
        vi.useRealTimers();
      }
      return { controller, c, syncedAt };
    };
    await check(2000, 10_000); // 3 × 2 s is under the 10 s floor
    const { controller, c, syncedAt } = await check(20_000, 60_000);
    g.fault('system', { status: 503 });
    await controller.refresh().catch(() => undefined);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(syncedAt + 61_000);
      expect(c.readiness()).toEqual([expect.stringMatching(/^topic map stale: last sync 61s ago: .*503/)]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a stop during the restart back-off: the source is not started again', async () => {
    const g = await gateway();
    const { source, s } = bareSource();
    const c = createConnector({
      controller: createController({ gatewayUrl: g.url }),
      source,
      restartDelay: { min: 200, max: 200 },
    });
    await c.start();
    s.ctx?.fail(new Error('x'));
    await waitFor(() => s.stops === 1);
    await c.stop();
    await new Promise((r) => setTimeout(r, 300)); // past the restart delay: nothing may start now
    expect(s.starts).toBe(1);
  });

  it('restart back-off doubles from min up to max', async () => {
    const g = await gateway();
    let starts = 0;
    const times: number[] = [];
    const source: Source = {
      name: 'failing',
      async start() {
        starts++;
        times.push(Date.now());
        if (starts <= 3) throw new Error(`start ${starts}`);
      },
      async stop() {},
    };
    const c = createConnector({
      controller: createController({ gatewayUrl: g.url }),
      source,
      restartDelay: { min: 100, max: 250 },
    });
    cleanups.push(() => c.stop());
    await c.start();
    await waitFor(() => starts === 4, { timeout: 5000 });
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(gaps[0]).toBeGreaterThanOrEqual(90); // 100
    expect(gaps[1]).toBeGreaterThanOrEqual(190); // 200
    expect(gaps[2]).toBeGreaterThanOrEqual(240); // 400 capped at 250
    await waitFor(() => c.ready());
  });

  it('onTopicsChange hears topic-set changes only; onFunctionsChange every map change; both unsubscribe', async () => {
    const g = await gateway();
    const { source, s } = bareSource();
    const controller = createController({ gatewayUrl: g.url, rebuildInterval: 60_000 });
    const c = createConnector({ controller, source });
    cleanups.push(() => c.stop());
    await c.start();
    const ctx = s.ctx as SourceContext;
    expect(ctx.topics()).toEqual(['t']);
    expect(ctx.functions().map((f) => f.name)).toEqual(['f']);
    expect(ctx.hasCapacity()).toBe(true);
    await ctx.waitForCapacity();
    const topicLists: string[][] = [];
    const fnCounts: number[] = [];
    const offTopics = ctx.onTopicsChange((t) => topicLists.push([...t]));
    ctx.onFunctionsChange((fns) => fnCounts.push(fns.length));
    g.addFunction({ name: 'g', annotations: { topic: 't' } }); // same topics
    await controller.refresh();
    g.addFunction({ name: 'h', annotations: { topic: 'u' } }); // a new topic
    await controller.refresh();
    expect(topicLists).toEqual([['t', 'u']]);
    expect(fnCounts).toEqual([2, 3]);
    offTopics();
    g.addFunction({ name: 'i', annotations: { topic: 'v' } });
    await controller.refresh();
    expect(topicLists).toHaveLength(1);
    expect(fnCounts).toEqual([2, 3, 4]);
    expect(await ctx.deliver({ topic: 'u', body: new Uint8Array(1) })).toMatchObject({ status: 'delivered' });
  });

  it('a failing dead-letter sink shows in readiness until a letter is written', async () => {
    const g = await gateway();
    g.fault('f.openfaas-fn', { status: 400 });
    let fail = true;
    const { source, s } = bareSource();
    const c = createConnector({
      controller: createController({ gatewayUrl: g.url }),
      source,
      onFailure: 'dead-letter',
      deadLetter: () => {
        if (fail) throw new Error('disk full');
      },
    });
    cleanups.push(() => c.stop());
    await c.start();
    const ctx = s.ctx as SourceContext;
    const m = { topic: 't', body: new Uint8Array(1) };
    expect(await ctx.deliver(m)).toMatchObject({ status: 'failed', ack: false });
    expect(c.readiness()).toEqual(['dead-letter sink failing: disk full']);
    fail = false;
    expect(await ctx.deliver(m)).toMatchObject({ status: 'dead-lettered', ack: true });
    expect(c.readiness()).toEqual([]);
  });
});

describe('connector lifecycle: survivors of the second mutation run', () => {
  it("a source's own health() decides connectedness, with its error in the reason", async () => {
    const g = await gateway();
    let health = { connected: true } as { connected: boolean; lastError?: string };
    const source: Source = { name: 'h', async start() {}, async stop() {}, health: () => health };
    const c = createConnector({ controller: createController({ gatewayUrl: g.url }), source });
    cleanups.push(() => c.stop());
    await c.start();
    expect(c.readiness()).toEqual([]);
    health = { connected: false, lastError: 'broker down' };
    expect(c.readiness()).toEqual(['source h not connected: broker down']);
  });

  it('the endpoint on a named host keeps that host; /readyz says ready:false with 503; 404 is text; closed at stop', async () => {
    const g = await gateway();
    let health = { connected: true };
    const source: Source = { name: 'h', async start() {}, async stop() {}, health: () => health };
    const c = createConnector({
      controller: createController({ gatewayUrl: g.url }),
      source,
      http: { port: 0, host: 'localhost' },
    });
    await c.start();
    expect(c.httpUrl).toMatch(/^http:\/\/localhost:\d+$/);
    health = { connected: false };
    const r = await fetch(`${c.httpUrl}/readyz`);
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ ready: false, reasons: ['source h not connected'] });
    const n = await fetch(`${c.httpUrl}/nothing`);
    expect(n.headers.get('content-type')).toBe('text/plain');
    const url = c.httpUrl;
    await c.stop();
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it('onTopicsChange tells topic sets apart whatever their names: [ab, c] then [a, bc] is a change', async () => {
    const g = await startGateway({ functions: [{ name: 'f', annotations: { topic: 'ab,c' } }] });
    cleanups.push(() => g.close());
    const { source, s } = bareSource();
    const controller = createController({ gatewayUrl: g.url, rebuildInterval: 60_000 });
    const c = createConnector({ controller, source });
    cleanups.push(() => c.stop());
    await c.start();
    const ctx = s.ctx as SourceContext;
    expect(ctx.topics()).toEqual(['ab', 'c']);
    const topicLists: string[][] = [];
    ctx.onTopicsChange((t) => topicLists.push([...t]));
    g.addFunction({ name: 'g', annotations: { topic: 'c' } }); // the map changes, the topic set does not
    await controller.refresh();
    expect(topicLists).toEqual([]);
    g.removeFunction('g');
    g.updateFunction('f', { annotations: { topic: 'a,bc' } });
    await controller.refresh();
    expect(topicLists).toEqual([['a', 'bc']]);
  });

  it('a drain that times out says so, with what is left', async () => {
    const g = await startGateway({ functions: [{ name: 'f', annotations: { topic: 't' } }] });
    cleanups.push(() => g.close());
    g.fault('f', { hang: true });
    const mem = memorySource();
    const warnings: { obj: unknown; msg: unknown }[] = [];
    const logger = {
      trace() {},
      debug() {},
      info() {},
      warn: (obj: unknown, msg?: unknown) => void warnings.push({ obj, msg }),
      error() {},
      fatal() {},
      child: () => logger,
    };
    const c = createConnector({
      controller: createController({ gatewayUrl: g.url }),
      source: mem.source,
      drainTimeout: 50,
      logger,
    });
    await c.start();
    mem.push({ topic: 't', body: Buffer.from('x') });
    await waitFor(() => g.pending() === 1);
    await c.stop();
    expect(warnings).toContainEqual({
      obj: { pending: 1, drainTimeout: 50 },
      msg: 'drain timeout: unsettled messages are not acked',
    });
    expect(mem.acked).toEqual([]);
  });

  it('stop() before start() resolves', async () => {
    const c = createConnector({
      controller: createController({ gatewayUrl: 'http://127.0.0.1:1' }),
      source: memorySource().source,
    });
    await c.stop();
  });

  it('pending() counts a delivery in flight; kill() does not drain it and leaves it un-acked', async () => {
    const g = await startGateway({ functions: [{ name: 'f', annotations: { topic: 't' } }] });
    cleanups.push(() => g.close());
    g.fault('f', { hang: true });
    const mem = memorySource();
    const c = createConnector({
      controller: createController({ gatewayUrl: g.url }),
      source: mem.source,
      drainTimeout: 20_000,
    });
    await c.start();
    mem.push({ topic: 't', body: Buffer.from('x') });
    await waitFor(() => g.pending() === 1);
    expect(c.pending()).toBe(1);
    const started = Date.now();
    await c.kill();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(mem.acked).toEqual([]);
  });
});

describe('connector options', () => {
  it.each([
    [{ maxPendingBytes: 0 }, 'maxPendingBytes'],
    [{ maxPendingBytes: 1.5 }, 'maxPendingBytes'],
    [{ maxMessageBytes: 0 }, 'maxMessageBytes'],
    [{ maxInFlight: Number.NaN }, 'maxInFlight'],
    [{ maxInFlightPerFunction: 2.5 }, 'maxInFlightPerFunction'],
    [{ retry: { minDelay: -1 } }, 'retry.minDelay'],
    [{ retry: { maxDelay: Number.POSITIVE_INFINITY } }, 'retry.maxDelay'],
  ])('%j fails naming %s', (opts, setting) => {
    const controller = createController({ gatewayUrl: 'http://127.0.0.1:1' });
    expect(() => createConnector({ controller, source: memorySource().source, ...opts })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', setting }),
    );
  });

  it('accepts the edges: 0 for plain numbers, 1 for integers, both onFailure modes', () => {
    const controller = createController({ gatewayUrl: 'http://127.0.0.1:1' });
    const ok = (o: Partial<ConnectorOptions>) => () =>
      createConnector({ controller, source: memorySource().source, ...o });
    expect(ok({ drainTimeout: 0, retry: { maxRetries: 0, minDelay: 0, maxDelay: 0 } })).not.toThrow();
    expect(ok({ maxInFlight: 1, maxInFlightPerFunction: 1, maxPendingBytes: 1 })).not.toThrow();
    expect(ok({ onFailure: 'dead-letter' })).not.toThrow();
    expect(ok({ onFailure: 'redeliver' })).not.toThrow();
    expect(ok({ onFailure: 'drop' as 'redeliver' })).toThrow(
      'invalid onFailure="drop": expected dead-letter or redeliver',
    );
    expect(ok({ maxInFlight: 0 })).toThrow('invalid maxInFlight=0: expected an integer >= 1');
    expect(ok({ drainTimeout: -1 })).toThrow('invalid drainTimeout=-1: expected a number >= 0');
  });
});

describe('runConnector', () => {
  it('a programmatic stop detaches its signal handlers; a failed start detaches them too', async () => {
    const g = await gateway();
    const before = process.listenerCount('SIGTERM');
    const c = await runConnector({
      controller: createController({ gatewayUrl: g.url }),
      source: memorySource().source,
      exit: () => undefined,
    });
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    expect(process.listenerCount('SIGINT')).toBeGreaterThan(0);
    await c.stop();
    expect(process.listenerCount('SIGTERM')).toBe(before);
    await expect(
      runConnector({
        controller: createController({ gatewayUrl: g.url }),
        source: memorySource().source,
        deadLetterFile: '/nonexistent-dir-for-test/x.jsonl',
        exit: () => undefined,
      }),
    ).rejects.toMatchObject({ code: 'ERR_CONFIG' });
    expect(process.listenerCount('SIGTERM')).toBe(before);
    const quiet = await runConnector({
      controller: createController({ gatewayUrl: g.url }),
      source: memorySource().source,
      signals: false,
    });
    expect(process.listenerCount('SIGTERM')).toBe(before);
    expect(quiet.ready()).toBe(true);
    await quiet.kill();
    // kill() detaches them too (SIGTERM and SIGINT).
    const beforeInt = process.listenerCount('SIGINT');
    const killed = await runConnector({
      controller: createController({ gatewayUrl: g.url }),
      source: memorySource().source,
      exit: () => undefined,
    });
    expect(process.listenerCount('SIGINT')).toBe(beforeInt + 1);
    await killed.kill();
    expect(process.listenerCount('SIGTERM')).toBe(before);
    expect(process.listenerCount('SIGINT')).toBe(beforeInt);
  });

  it('an unknown option is named with the function it was given to', async () => {
    const o = {
      controller: createController({ gatewayUrl: 'http://127.0.0.1:1' }),
      source: memorySource().source,
      bogus: 1,
    } as never;
    expect(() => createConnector(o)).toThrow(/createConnector/);
    await expect(runConnector(o)).rejects.toThrow(/runConnector/);
  });
});
