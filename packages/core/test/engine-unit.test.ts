import { getEventListeners } from 'node:events';
import { memoryLogger } from '@connector/testing';
import { describe, expect, it, vi } from 'vitest';
import type { DeadLetter } from '../src/dead-letters.js';
import { DEFAULT_RETRY, DeliveryEngine, type Discovery, type EngineOptions } from '../src/engine.js';
import { InvokeError, isShutdownError } from '../src/errors.js';
import type { Invoker } from '../src/invoker.js';
import { noopLogger } from '../src/logger.js';
import type { ConnectorMetrics } from '../src/metrics.js';
import { ResponseHub } from '../src/responses.js';
import type { SourceMessage } from '../src/source.js';
import type { FunctionInfo, InvokeOptions, InvokeResult, Logger } from '../src/types.js';
import { gate, waitFor } from './helpers.js';

// The delivery engine on its own, with an in-memory discovery and invoker (core's own interfaces, no client
// library): each rule checked directly and fast. The same rules against the test gateway: delivery-rules.test.ts.

const fn = (name: string): FunctionInfo =>
  ({
    name,
    namespace: 'ns',
    address: `${name}.ns`,
    annotations: {},
    labels: {},
    topics: ['t'],
  }) as unknown as FunctionInfo;

type Reply = {
  status: number;
  error?: InvokeError;
  headers?: Record<string, string>;
  hold?: Promise<void> | undefined;
};

/** `observe`: the engine's logger, and no metrics at all (as when the connector has none). */
function setup(
  o: Partial<EngineOptions> = {},
  replies: (call: Call) => Reply = () => ({ status: 200 }),
  observe: { log?: Logger; metrics?: false } = {},
) {
  const map = new Map<string, FunctionInfo[]>([['t', [fn('a')]]]);
  const known = new Map<string, FunctionInfo>([
    ['a', fn('a')],
    ['b', fn('b')],
  ]);
  let synced = true;
  let ready: Promise<void> = new Promise(() => undefined);
  let refreshes = 0;
  const discovery: Discovery = {
    match: (topic) => map.get(topic) ?? [],
    resolve: (name) => known.get(name),
    refresh: async () => {
      refreshes++;
    },
    synced: () => synced,
    ready: () => ready,
  };
  const calls: Call[] = [];
  let active = 0;
  let maxActive = 0;
  const result = (c: Call, r: Reply): InvokeResult => ({
    topic: c.topic,
    function: c.fn,
    status: r.status,
    headers: r.headers ?? {},
    body: new Uint8Array(0),
    duration: 1,
    async: false,
    attempt: c.options?.attempt ?? 1,
    final: true,
    ...(r.error ? { error: r.error } : r.status >= 300 ? { error: statusError(r.status) } : {}),
  });
  const invoker = {
    asyncByDefault: false,
    invoke: async (
      target: FunctionInfo | string,
      topic: string,
      body: Uint8Array | string,
      options?: InvokeOptions,
    ) => {
      const c: Call = { fn: typeof target === 'string' ? target : target.address, topic, body, options };
      calls.push(c);
      const r = replies(c);
      active++;
      maxActive = Math.max(maxActive, active);
      try {
        await r.hold;
      } finally {
        active--;
      }
      return result(c, r);
    },
    failed: (f: string, topic: string, error: InvokeError, attempt = 1) =>
      ({
        ...result({ fn: f, topic, body: '', options: { attempt } }, { status: 0, error }),
        attempt,
      }) as InvokeResult,
    invokeBatch: async () => {
      throw new Error('no batched function in these tests');
    },
    system: async () => ({ status: 200, json: [] }),
    close: async () => undefined,
    destroy: () => undefined,
  } satisfies Invoker;
  const published: InvokeResult[] = [];
  const responses = new ResponseHub(noopLogger);
  responses.subscribe((r) => published.push(r));
  const counted: string[] = [];
  const metrics = new Proxy(
    {},
    {
      get:
        (_t, name) =>
        (...args: unknown[]) =>
          counted.push(
            `${String(name)}(${args
              .slice(0, 2)
              .map((a) => (typeof a === 'object' && a !== null && 'topic' in a ? a.topic : a)) // a message: its topic
              .join(',')})`,
          ),
    },
  ) as ConnectorMetrics;
  const letters: DeadLetter[] = [];
  const engine = new DeliveryEngine(
    discovery,
    invoker,
    responses,
    {
      maxInFlight: 8,
      maxPendingBytes: 1 << 20,
      maxMessageBytes: 1 << 20,
      maxInFlightPerFunction: undefined,
      retry: { ...DEFAULT_RETRY, minDelay: 1, maxDelay: 2 },
      onFailure: 'redeliver',
      adaptive: false,
      deadLetter: async (l) => {
        letters.push(l);
      },
      source: 'mem',
      ...o,
    },
    observe.metrics === false ? undefined : metrics,
    observe.log ?? noopLogger,
  );
  return {
    engine,
    map,
    calls,
    published,
    counted,
    letters,
    get refreshes() {
      return refreshes;
    },
    get maxActive() {
      return maxActive;
    },
    setSynced: (v: boolean) => {
      synced = v;
    },
    setReady: (p: Promise<void>) => {
      ready = p;
    },
  };
}

interface Call {
  fn: string;
  topic: string;
  body: Uint8Array | string;
  options: InvokeOptions | undefined;
}

const statusError = (status: number, canRetry = status >= 500) =>
  status === 404
    ? new InvokeError('ERR_FUNCTION_NOT_FOUND', 'not found (404)', 404)
    : new InvokeError('ERR_INVOKE_STATUS', `answered ${status}`, status, { canRetry });

const msg = (over: Partial<SourceMessage> = {}): SourceMessage => ({
  topic: 't',
  body: new TextEncoder().encode('body'),
  ...over,
});

describe('DeliveryEngine (unit)', () => {
  it('delivers: one invocation with the message topic, body, headers, content type, attempt and retry statuses', async () => {
    const s = setup();
    const headers = { 'x-a': '1' };
    const m = msg({ headers, contentType: 'text/plain', id: 'i' });
    const out = await s.engine.deliver(m);
    expect(out).toEqual({
      status: 'delivered',
      ack: true,
      results: [expect.objectContaining({ status: 200 })],
    });
    expect(s.calls).toHaveLength(1);
    const c = s.calls[0];
    expect(c?.fn).toBe('a.ns');
    expect(c?.topic).toBe('t');
    expect(Buffer.from(c?.body as Uint8Array).toString()).toBe('body');
    expect(c?.options).toEqual({
      attempt: 1,
      retryOn: new Set(DEFAULT_RETRY.retryOnStatus),
      headers,
      contentType: 'text/plain',
      message: m, // its id and timestamp make the CloudEvent's (cloudevents.ts)
      source: 'mem',
    });
    expect(c?.options?.message).toBe(m);
    expect(s.published.map((r) => r.final)).toEqual([true]);
    expect(s.counted).toEqual(['receivedMessage(mem,t)', 'invocation(a.ns,200)', 'delivery(delivered)']);
    expect(s.engine.pending()).toBe(0);
    expect(s.engine.pendingSize()).toBe(0);
    // No headers or content type on the message: none passed.
    await s.engine.deliver(msg());
    expect(s.calls[1]?.options).toEqual({
      attempt: 1,
      retryOn: expect.any(Set),
      message: expect.anything(),
      source: 'mem',
    });
  });

  it('a message over maxMessageBytes is dead-lettered for each target without an invocation, never redelivered', async () => {
    const s = setup({ maxMessageBytes: 8, onFailure: 'redeliver' });
    s.map.set('t', [fn('a'), fn('b')]);
    const out = await s.engine.deliver(msg({ body: new Uint8Array(9), id: 'big' }));
    expect(out).toMatchObject({ status: 'dead-lettered', ack: true });
    expect(s.calls).toEqual([]);
    expect(
      s.letters.map((l) => [l.function, l.result.error?.code, l.message.body.byteLength, l.message.id]),
    ).toEqual([
      ['a.ns', 'ERR_MESSAGE_TOO_LARGE', 0, 'big'],
      ['b.ns', 'ERR_MESSAGE_TOO_LARGE', 0, 'big'],
    ]);
    expect(s.letters[0]?.reason).toBe('message of 9 bytes is over max_message_bytes (8)');
    expect(s.counted).toContain('deadLetter(a.ns,ERR_MESSAGE_TOO_LARGE)');
    expect(s.engine.pendingSize()).toBe(0);
    // at the limit it is invoked as usual
    expect(await s.engine.deliver(msg({ body: new Uint8Array(8) }))).toMatchObject({ status: 'delivered' });
    expect(s.calls).toHaveLength(2);
  });

  it('unrouted (synced, no function) acks without invoking', async () => {
    const s = setup();
    expect(await s.engine.deliver(msg({ topic: 'none' }))).toEqual({
      status: 'unrouted',
      ack: true,
      results: [],
    });
    expect(s.calls).toEqual([]);
    expect(s.counted).toEqual(['receivedMessage(mem,none)', 'unroutedMessage(mem)', 'delivery(unrouted)']);
  });

  it('before the first sync: waits for it (then routes), or leaves the message un-acked after a second', async () => {
    const s = setup();
    s.setSynced(false);
    s.map.clear();
    const started = Date.now();
    const out = await s.engine.deliver(msg());
    expect(out).toEqual({ status: 'failed', ack: false, results: [] });
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(s.engine.inFlight()).toBe(0); // the slot it held while waiting is back

    const t = setup();
    t.setSynced(false);
    t.map.delete('t');
    const sync = gate();
    t.setReady(sync.promise);
    const p = t.engine.deliver(msg());
    await waitFor(() => t.engine.inFlight() === 1); // waiting holds a global slot
    t.map.set('t', [fn('a')]);
    t.setSynced(true);
    sync.open();
    expect((await p).status).toBe('delivered');
    expect(t.calls).toHaveLength(1);
    expect(t.engine.inFlight()).toBe(0);
  });

  it('message.functions: resolved names are invoked; an unknown one fails without a request', async () => {
    const s = setup();
    const out = await s.engine.deliver(msg({ topic: 'none', functions: ['b', 'zzz'] }));
    expect(out.status).toBe('failed');
    expect(out.ack).toBe(false);
    expect(s.calls.map((c) => c.fn)).toEqual(['b.ns']);
    const failed = out.results.find((r) => r.function === 'zzz');
    expect(failed?.error?.code).toBe('ERR_FUNCTION_NOT_FOUND');
    expect(failed?.error?.message).toBe('function zzz is outside the configured namespace');
    expect(s.refreshes).toBe(0); // status 0, not a 404: no map refresh
  });

  it('names the map does not know get no per-function slots or adaptive limit (a message could name endless ones)', async () => {
    const s = setup({ maxInFlightPerFunction: 2, adaptive: true });
    for (let i = 0; i < 50; i++)
      await s.engine.deliver(msg({ topic: 'none', functions: [`unknown-${i}`, 'b'] }));
    expect([...s.engine.adaptiveLimits().keys()]).toEqual(['b.ns']);
  });

  it('fan-out: every matched function is invoked; one failure fails the message (redeliver)', async () => {
    const s = setup({}, (c) => ({ status: c.fn === 'b.ns' ? 400 : 200 }));
    s.map.set('t', [fn('a'), fn('b')]);
    const out = await s.engine.deliver(msg());
    expect(s.calls.map((c) => c.fn).sort()).toEqual(['a.ns', 'b.ns']);
    expect(out.status).toBe('failed');
    expect(out.ack).toBe(false);
    expect(out.results.map((r) => r.status)).toEqual([200, 400]);
    expect(s.counted.at(-1)).toBe('delivery(failed)');
    expect(s.letters).toEqual([]);
  });

  it('retries what canRetry says, up to maxRetries, publishing each attempt (only the last final)', async () => {
    const s = setup({ retry: { ...DEFAULT_RETRY, maxRetries: 2, minDelay: 1, maxDelay: 1 } }, () => ({
      status: 503,
    }));
    const out = await s.engine.deliver(msg());
    expect(s.calls.map((c) => c.options?.attempt)).toEqual([1, 2, 3]);
    expect(s.published.map((r) => [r.attempt, r.final])).toEqual([
      [1, false],
      [2, false],
      [3, true],
    ]);
    expect(out.results[0]?.attempt).toBe(3);
    expect(s.counted.filter((c) => c.startsWith('retry('))).toEqual([
      'retry(a.ns,status_503)',
      'retry(a.ns,status_503)',
    ]);

    const n = setup({}, () => ({ status: 500, error: statusError(500, false) }));
    await n.engine.deliver(msg());
    expect(n.calls).toHaveLength(1); // canRetry false: no retry

    const z = setup({ retry: { ...DEFAULT_RETRY, maxRetries: 0 } }, () => ({ status: 503 }));
    await z.engine.deliver(msg());
    expect(z.calls).toHaveLength(1);

    let i = 0;
    const ok = setup({}, () => ({ status: i++ === 0 ? 503 : 200 }));
    expect((await ok.engine.deliver(msg())).status).toBe('delivered');
    expect(ok.calls).toHaveLength(2);
  });

  it('a retry waits at least Retry-After', async () => {
    let i = 0;
    const s = setup({}, () =>
      i++ === 0
        ? { status: 429, error: statusError(429, true), headers: { 'retry-after': '0.3' } }
        : { status: 200 },
    );
    const started = Date.now();
    expect((await s.engine.deliver(msg())).status).toBe('delivered');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('a 404 refreshes the map once and retries only a function still subscribed', async () => {
    const s = setup({}, () => ({ status: 404 }));
    const out = await s.engine.deliver(msg());
    expect(s.refreshes).toBe(1);
    expect(s.calls).toHaveLength(2); // still matched: one retry, then the second 404 is final
    expect(out.results[0]?.status).toBe(404);
    expect(s.published.map((r) => r.final)).toEqual([false, true]);

    const gone = setup({}, () => ({ status: 404 }));
    gone.map.set('t', [fn('a')]);
    const p = gone.engine.deliver(msg());
    gone.map.set('t', [fn('other')]); // the refresh finds the function gone
    await p;
    expect(gone.refreshes).toBe(1);
    expect(gone.calls).toHaveLength(1);

    const named = setup({}, () => ({ status: 404 }));
    await named.engine.deliver(msg({ topic: 'none', functions: ['a'] })); // by name: still a target
    expect(named.calls).toHaveLength(2);

    const none = setup({ retry: { ...DEFAULT_RETRY, maxRetries: 0 } }, () => ({ status: 404 }));
    await none.engine.deliver(msg());
    expect(none.refreshes).toBe(1);
    expect(none.calls).toHaveLength(1);
  });

  it('dead-letter: handlers get each failed result, then ack; a failing handler leaves it un-acked', async () => {
    const s = setup({ onFailure: 'dead-letter' }, () => ({ status: 400 }));
    const m = msg({ id: 'x' });
    const out = await s.engine.deliver(m);
    expect(out.status).toBe('dead-lettered');
    expect(out.ack).toBe(true);
    expect(s.letters).toEqual([
      { message: m, function: 'a.ns', result: out.results[0], source: 'mem', reason: 'answered 400' },
    ]);
    expect(s.counted.slice(-2)).toEqual(['deadLetter(a.ns,status_400)', 'delivery(dead-lettered)']);

    const noReason = setup({ onFailure: 'dead-letter' }, () => ({ status: 400 }));
    await noReason.engine.deliver(msg());
    expect(noReason.letters[0]?.reason).toBe('answered 400');

    const bad = setup(
      {
        onFailure: 'dead-letter',
        deadLetter: () => {
          throw new Error('disk full');
        },
      },
      () => ({ status: 400 }),
    );
    const o2 = await bad.engine.deliver(msg());
    expect(o2).toEqual({ status: 'failed', ack: false, results: [expect.objectContaining({ status: 400 })] });
    expect(bad.counted.at(-1)).toBe('delivery(failed)');

    const none = setup({ onFailure: 'dead-letter', deadLetter: undefined }, () => ({ status: 400 }));
    expect((await none.engine.deliver(msg())).status).toBe('dead-lettered');
  });

  it('messages with one orderingKey run one after another; other keys and no key do not wait', async () => {
    const first = gate();
    const s = setup({}, (c) => ({
      status: 200,
      hold: Buffer.from(c.body as Uint8Array).toString() === '1' ? first.promise : undefined,
    }));
    const body = (x: string) => new TextEncoder().encode(x);
    const p1 = s.engine.deliver(msg({ body: body('1'), orderingKey: 'k' }));
    const p2 = s.engine.deliver(msg({ body: body('2'), orderingKey: 'k' }));
    const p3 = s.engine.deliver(msg({ body: body('3'), orderingKey: 'other' }));
    const p4 = s.engine.deliver(msg({ body: body('4') }));
    await Promise.all([p3, p4]);
    expect(s.calls.map((c) => Buffer.from(c.body as Uint8Array).toString()).sort()).toEqual(['1', '3', '4']);
    first.open();
    await Promise.all([p1, p2]);
    expect(s.calls.map((c) => Buffer.from(c.body as Uint8Array).toString())).toEqual(['1', '3', '4', '2']);
    // A failed predecessor does not block its key.
    const t = setup({}, (c) => ({
      status: Buffer.from(c.body as Uint8Array).toString() === 'x' ? 400 : 200,
    }));
    expect((await t.engine.deliver(msg({ body: body('x'), orderingKey: 'k' }))).status).toBe('failed');
    expect((await t.engine.deliver(msg({ body: body('y'), orderingKey: 'k' }))).status).toBe('delivered');
  });

  it('slots: maxInFlight and maxInFlightPerFunction bound concurrent invocations; hasCapacity reports it', async () => {
    const hold = gate();
    const s = setup({ maxInFlight: 2 }, () => ({ status: 200, hold: hold.promise }));
    expect(s.engine.hasCapacity()).toBe(true);
    const ps = [1, 2, 3].map(() => s.engine.deliver(msg()));
    await waitFor(() => s.calls.length === 2);
    expect(s.engine.inFlight()).toBe(2);
    expect(s.engine.hasCapacity()).toBe(false);
    expect(s.engine.pending()).toBe(3);
    hold.open();
    await Promise.all(ps);
    expect(s.maxActive).toBe(2);
    expect(s.engine.inFlight()).toBe(0);
    expect(s.engine.hasCapacity()).toBe(true);

    const h2 = gate();
    const f = setup({ maxInFlightPerFunction: 1 }, () => ({ status: 200, hold: h2.promise }));
    f.map.set('t', [fn('a'), fn('b')]);
    const qs = [f.engine.deliver(msg()), f.engine.deliver(msg())];
    await waitFor(() => f.calls.length === 2);
    expect(f.calls.map((c) => c.fn).sort()).toEqual(['a.ns', 'b.ns']); // one each, the second message waits
    h2.open();
    await Promise.all(qs);
    expect(f.calls).toHaveLength(4);
    expect(f.maxActive).toBe(2);
    // A failing invocation gives its per-function slot back too.
    const e = setup({ maxInFlightPerFunction: 1 }, () => ({ status: 400 }));
    await e.engine.deliver(msg());
    expect((await e.engine.deliver(msg())).status).toBe('failed');
  });

  it('the byte budget: pending bodies at maxPendingBytes mean no capacity until one settles', async () => {
    const hold = gate();
    const s = setup({ maxPendingBytes: 8 }, () => ({ status: 200, hold: hold.promise }));
    const p = s.engine.deliver(msg({ body: new Uint8Array(8) }));
    expect(s.engine.pendingSize()).toBe(8);
    expect(s.engine.hasCapacity()).toBe(false);
    let woke = false;
    const w = s.engine.waitForCapacity().then(() => {
      woke = true;
    });
    await waitFor(() => s.calls.length === 1);
    expect(woke).toBe(false);
    hold.open();
    await p;
    await w;
    expect(s.engine.pendingSize()).toBe(0);
    expect(s.engine.hasCapacity()).toBe(true);

    const t = setup({ maxPendingBytes: 8 });
    const q = t.engine.deliver(msg({ body: new Uint8Array(7) }));
    expect(t.engine.hasCapacity()).toBe(true); // below the budget
    await q;
  });

  it('waitForCapacity resolves at once with capacity, on close, and on an aborted signal', async () => {
    const hold = gate();
    const s = setup({ maxInFlight: 1 }, () => ({ status: 200, hold: hold.promise }));
    await s.engine.waitForCapacity();
    const p = s.engine.deliver(msg());
    await waitFor(() => s.calls.length === 1);
    const ac = new AbortController();
    ac.abort();
    await s.engine.waitForCapacity(ac.signal);
    const ac2 = new AbortController();
    let woke = false;
    const w = s.engine.waitForCapacity(ac2.signal).then(() => {
      woke = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(woke).toBe(false);
    ac2.abort();
    await w;
    const w2 = s.engine.waitForCapacity();
    s.engine.close();
    await w2;
    await s.engine.waitForCapacity(); // closed: at once
    hold.open();
    await p;
  });

  it('close refuses new deliveries with ShutdownError; drain waits for pending ones, up to its timeout', async () => {
    const hold = gate();
    const s = setup({}, () => ({ status: 200, hold: hold.promise }));
    expect(await s.engine.drain(10)).toBe(true);
    const p = s.engine.deliver(msg());
    s.engine.close();
    await expect(s.engine.deliver(msg())).rejects.toSatisfy(isShutdownError);
    expect(s.engine.pending()).toBe(1);
    const started = Date.now();
    expect(await s.engine.drain(100)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    const d = s.engine.drain(5000);
    hold.open();
    expect(await d).toBe(true);
    expect((await p).status).toBe('delivered');
  });

  it('abort: a back-off sleep and a queued slot end with ShutdownError, so nothing is acked', async () => {
    const s = setup({ retry: { ...DEFAULT_RETRY, minDelay: 60_000, maxDelay: 60_000 } }, () => ({
      status: 503,
      headers: { 'retry-after': '60' },
    }));
    const p = s.engine.deliver(msg());
    await waitFor(() => s.published.length === 1);
    s.engine.abort();
    await expect(p).rejects.toSatisfy(isShutdownError);

    const hold = gate();
    const q = setup({ maxInFlight: 1 }, () => ({ status: 200, hold: hold.promise }));
    const a = q.engine.deliver(msg());
    const b = q.engine.deliver(msg());
    await waitFor(() => q.calls.length === 1);
    q.engine.abort();
    await expect(b).rejects.toSatisfy(isShutdownError);
    hold.open();
    await a;

    // An invocation failing after abort is not retried.
    const h3 = gate();
    const r = setup({}, () => ({ status: 503, hold: h3.promise }));
    const c = r.engine.deliver(msg());
    await waitFor(() => r.calls.length === 1);
    r.engine.abort();
    h3.open();
    await expect(c).rejects.toSatisfy(isShutdownError);
    expect(r.calls).toHaveLength(1);
  });
});

describe('DeliveryEngine (unit): bookkeeping a source relies on', () => {
  const text = (b: Uint8Array | string) => Buffer.from(b as Uint8Array).toString();
  const body = (x: string) => new TextEncoder().encode(x);
  const tick = () => new Promise((r) => setImmediate(r));

  it('oldestPendingMs: the age of the oldest unsettled message; 0 when none', async () => {
    const h1 = gate();
    const h2 = gate();
    const s = setup({}, (c) => ({ status: 200, hold: text(c.body) === '1' ? h1.promise : h2.promise }));
    expect(s.engine.oldestPendingMs()).toBe(0);
    const started = Date.now();
    const p1 = s.engine.deliver(msg({ body: body('1') }));
    await waitFor(() => s.engine.oldestPendingMs() >= 50);
    expect(s.engine.oldestPendingMs()).toBeLessThanOrEqual(Date.now() - started);
    const p2 = s.engine.deliver(msg({ body: body('2') })); // at least 50 ms younger than the first
    expect(s.engine.oldestPendingMs()).toBeGreaterThanOrEqual(50); // still the first one's age
    h1.open();
    await p1;
    expect(s.engine.oldestPendingMs()).toBeLessThanOrEqual(Date.now() - started - 50); // now the second's
    h2.open();
    await p2;
    expect(s.engine.oldestPendingMs()).toBe(0);
  });

  it('an ordering key stays ordered after its first message settles: a new message waits for the one in flight', async () => {
    const h2 = gate();
    const s = setup({}, (c) => ({ status: 200, hold: text(c.body) === '2' ? h2.promise : undefined }));
    const p1 = s.engine.deliver(msg({ body: body('1'), orderingKey: 'k' }));
    const p2 = s.engine.deliver(msg({ body: body('2'), orderingKey: 'k' }));
    await p1;
    await waitFor(() => s.calls.length === 2); // '2' in flight
    const p3 = s.engine.deliver(msg({ body: body('3'), orderingKey: 'k' }));
    await tick();
    await tick();
    expect(s.calls.map((c) => text(c.body))).toEqual(['1', '2']); // '3' waits for '2'
    h2.open();
    await Promise.all([p2, p3]);
    expect(s.calls.map((c) => text(c.body))).toEqual(['1', '2', '3']);
  });

  it('drain resolves once every pending message is settled, not at the first; a drain that timed out drops only itself', async () => {
    const h1 = gate();
    const h2 = gate();
    const s = setup({}, (c) => ({ status: 200, hold: text(c.body) === '1' ? h1.promise : h2.promise }));
    const p1 = s.engine.deliver(msg({ body: body('1') }));
    const p2 = s.engine.deliver(msg({ body: body('2') }));
    let drained: boolean | undefined;
    const long = s.engine.drain(5_000).then((v) => {
      drained = v;
    });
    expect(await s.engine.drain(20)).toBe(false); // times out while the long one waits on
    h1.open();
    await p1;
    await tick();
    expect(drained).toBe(undefined);
    expect(s.engine.pending()).toBe(1);
    h2.open();
    await p2;
    await long;
    expect(drained).toBe(true);
    expect(s.engine.pending()).toBe(0);
  });
});

describe('DeliveryEngine (unit): adaptive concurrency', () => {
  const withAnnotations = (name: string, annotations: Record<string, string>): FunctionInfo =>
    ({ ...fn(name), annotations }) as FunctionInfo;
  const noRetries = { ...DEFAULT_RETRY, maxRetries: 0, minDelay: 1, maxDelay: 1 };

  it('a throttled answer (429, 503, a deadline) spends no attempt: the message queues for its function again', async () => {
    const replies: Reply[] = [
      { status: 429, error: statusError(429, true) },
      { status: 503 },
      { status: 0, error: new InvokeError('ERR_TIMEOUT', 'deadline') },
      { status: 200 },
    ];
    let i = 0;
    const s = setup({ adaptive: true, retry: noRetries }, () => replies[i++] as Reply);
    const out = await s.engine.deliver(msg());
    expect(out.status).toBe('delivered');
    expect(s.calls.map((c) => c.options?.attempt)).toEqual([1, 1, 1, 1]);
    expect(s.published.map((r) => r.final)).toEqual([false, false, false, true]);
    expect(s.counted.filter((c) => c.startsWith('retry('))).toEqual([
      'retry(a.ns,throttled)',
      'retry(a.ns,throttled)',
      'retry(a.ns,throttled)',
    ]);
    expect([...s.engine.adaptiveLimits().keys()]).toEqual(['a.ns']);
  });

  it('a throttled answer waits for its Retry-After before it queues again', async () => {
    let i = 0;
    const s = setup({ adaptive: true, retry: noRetries }, () =>
      i++ === 0
        ? { status: 429, error: statusError(429, true), headers: { 'retry-after': '0.2' } }
        : { status: 200 },
    );
    const started = Date.now();
    expect((await s.engine.deliver(msg())).status).toBe('delivered');
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('other failures under adaptive concurrency, and throttling without it, spend attempts as usual', async () => {
    const a = setup({ adaptive: true, retry: noRetries }, () => ({
      status: 500,
      error: statusError(500, true),
    }));
    expect((await a.engine.deliver(msg())).status).toBe('failed');
    expect(a.calls).toHaveLength(1);
    const b = setup({ adaptive: false, retry: noRetries }, () => ({
      status: 429,
      error: statusError(429, true),
    }));
    expect((await b.engine.deliver(msg())).status).toBe('failed');
    expect(b.calls).toHaveLength(1);
    expect(b.engine.adaptiveLimits().size).toBe(0);
  });

  it('a function throttling without end: after 50 throttled tries the answer counts as a failure', async () => {
    const s = setup({ adaptive: true, retry: noRetries }, () => ({
      status: 429,
      error: statusError(429, true),
    }));
    const out = await s.engine.deliver(msg());
    expect(out.status).toBe('failed');
    expect(s.calls).toHaveLength(51);
    expect(s.published.filter((r) => r.final)).toHaveLength(1);
  });

  it('the adaptive limit starts at 2 and never exceeds max-inflight (or max_inflight without it)', async () => {
    const hold = gate();
    const s = setup({ adaptive: true }, () => ({ status: 200, hold: hold.promise }));
    const ps = [1, 2, 3, 4].map(() => s.engine.deliver(msg()));
    await waitFor(() => s.calls.length >= 2);
    await new Promise((r) => setImmediate(r));
    expect(s.calls).toHaveLength(2); // starts at 2
    hold.open();
    await Promise.all(ps);

    const h2 = gate();
    const one = setup({ adaptive: true }, () => ({ status: 200, hold: h2.promise }));
    one.map.set('t', [withAnnotations('a', { 'connector.dev/max-inflight': '1' })]);
    const qs = [1, 2, 3].map(() => one.engine.deliver(msg()));
    await waitFor(() => one.calls.length >= 1);
    await new Promise((r) => setImmediate(r));
    expect(one.calls).toHaveLength(1); // max-inflight 1 under the start of 2
    h2.open();
    await Promise.all(qs);
    expect(one.maxActive).toBe(1);
    expect(one.engine.adaptiveLimits().get('a.ns')).toBe(1);

    const cap = setup({ adaptive: true, maxInFlight: 3 });
    for (let k = 0; k < 30; k++) await cap.engine.deliver(msg());
    expect(cap.engine.adaptiveLimits().get('a.ns')).toBe(3); // grew with successes, up to max_inflight
  });
});

describe('DeliveryEngine (unit): policies and stopping', () => {
  const withAnnotations = (name: string, annotations: Record<string, string>): FunctionInfo =>
    ({ ...fn(name), annotations }) as FunctionInfo;
  const text = (b: Uint8Array | string) => Buffer.from(b as Uint8Array).toString();
  const body = (x: string) => new TextEncoder().encode(x);

  it('abort: a message waiting behind its key, and one waiting for its function slot, end with ShutdownError uninvoked', async () => {
    const hold = gate();
    const s = setup({}, () => ({ status: 200, hold: hold.promise }));
    const first = s.engine.deliver(msg({ body: body('1'), orderingKey: 'k' }));
    const behind = s.engine.deliver(msg({ body: body('2'), orderingKey: 'k' }));
    await waitFor(() => s.calls.length === 1);
    s.engine.abort();
    hold.open();
    await first;
    await expect(behind).rejects.toSatisfy(isShutdownError);
    expect(s.calls.map((c) => text(c.body))).toEqual(['1']);

    const h2 = gate();
    const f = setup({ maxInFlightPerFunction: 1 }, () => ({ status: 200, hold: h2.promise }));
    const a = f.engine.deliver(msg());
    const b = f.engine.deliver(msg()); // waits for a.ns's only slot
    await waitFor(() => f.calls.length === 1);
    f.engine.abort();
    await expect(b).rejects.toSatisfy(isShutdownError);
    h2.open();
    await a;
    expect(f.calls).toHaveLength(1);
  });

  it('a network error (no status) is retried and counted by its code', async () => {
    let i = 0;
    const s = setup({}, () =>
      i++ === 0 ? { status: 0, error: new InvokeError('ERR_NETWORK', 'reset') } : { status: 200 },
    );
    expect((await s.engine.deliver(msg())).status).toBe('delivered');
    expect(s.counted.filter((c) => c.startsWith('retry('))).toEqual(['retry(a.ns,ERR_NETWORK)']);
  });

  it('connector.dev/timeout is the deadline each attempt gets', async () => {
    const s = setup();
    s.map.set('t', [withAnnotations('a', { 'connector.dev/timeout': '5s' })]);
    await s.engine.deliver(msg());
    expect(s.calls[0]?.options?.timeout).toBe(5000);
  });

  it('connector.dev/max-age: from the message timestamp, or from its first attempt; expired is dead-lettered uninvoked', async () => {
    const aged = withAnnotations('a', { 'connector.dev/max-age': '150ms' });
    const old = setup({ onFailure: 'redeliver' });
    old.map.set('t', [aged]);
    const out = await old.engine.deliver(msg({ timestamp: Date.now() - 10_000 }));
    expect(out).toMatchObject({ status: 'dead-lettered', ack: true });
    expect(old.calls).toEqual([]);
    expect(old.letters.map((l) => l.result.error?.code)).toEqual(['ERR_MESSAGE_EXPIRED']);
    const age = Number(
      /^message is (\d+) ms old, over max-age 150 ms$/.exec(old.letters[0]?.reason ?? '')?.[1],
    );
    expect(age).toBeGreaterThanOrEqual(10_000); // from the message's timestamp
    expect(age).toBeLessThan(70_000);

    const fresh = setup();
    fresh.map.set('t', [aged]);
    expect((await fresh.engine.deliver(msg({ timestamp: Date.now() }))).status).toBe('delivered');
    expect((await fresh.engine.deliver(msg())).status).toBe('delivered');

    // No timestamp: its age counts from the first attempt; a retry after max-age is not sent.
    const slow = setup({ retry: { ...DEFAULT_RETRY, minDelay: 400, maxDelay: 400 } }, () => ({
      status: 503,
      headers: { 'retry-after': '0.4' },
    }));
    slow.map.set('t', [aged]);
    const o2 = await slow.engine.deliver(msg());
    expect(o2.status).toBe('dead-lettered');
    expect(slow.calls).toHaveLength(1);
    expect(o2.results[0]?.attempt).toBe(2);
  });

  it('dead-letter or redeliver is decided per function: any failure that may not be dead-lettered keeps the message', async () => {
    const dl = withAnnotations('a', { 'connector.dev/on-failure': 'dead-letter' });
    const both = setup({ onFailure: 'redeliver' }, () => ({ status: 400 }));
    both.map.set('t', [dl, fn('b')]);
    expect(await both.engine.deliver(msg())).toMatchObject({ status: 'failed', ack: false });
    expect(both.letters).toEqual([]);

    const one = setup({ onFailure: 'redeliver' }, (c) => ({ status: c.fn === 'a.ns' ? 400 : 200 }));
    one.map.set('t', [dl, fn('b')]);
    expect(await one.engine.deliver(msg())).toMatchObject({ status: 'dead-lettered', ack: true });
    expect(one.letters.map((l) => l.function)).toEqual(['a.ns']);

    // The function asked for it: dead-lettered whatever the policy, unless another failure must be redelivered.
    const rejected = new InvokeError('ERR_FUNCTION_REJECTED', 'rejected by the function');
    const asked = setup({ onFailure: 'redeliver' }, () => ({ status: 200, error: rejected }));
    expect(await asked.engine.deliver(msg())).toMatchObject({ status: 'dead-lettered', ack: true });
    const mixed = setup({ onFailure: 'redeliver' }, (c) =>
      c.fn === 'a.ns' ? { status: 200, error: rejected } : { status: 400 },
    );
    mixed.map.set('t', [fn('a'), fn('b')]);
    expect(await mixed.engine.deliver(msg())).toMatchObject({ status: 'failed', ack: false });
  });
});

describe('DeliveryEngine (unit): waiting for capacity', () => {
  it('waitForCapacity woken by capacity leaves no listener on the caller’s signal', async () => {
    const hold = gate();
    const s = setup({ maxInFlight: 1 }, () => ({ status: 200, hold: hold.promise }));
    const p = s.engine.deliver(msg());
    const ac = new AbortController();
    const w = s.engine.waitForCapacity(ac.signal);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
    hold.open();
    await p;
    await w;
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });
});

describe('DeliveryEngine (unit): what operators see, and edges of the rules', () => {
  const withAnnotations = (name: string, annotations: Record<string, string>): FunctionInfo =>
    ({ ...fn(name), annotations }) as FunctionInfo;
  const noRetries = { ...DEFAULT_RETRY, maxRetries: 0, minDelay: 1, maxDelay: 1 };
  const tick = () => new Promise((r) => setImmediate(r));

  it('without metrics every outcome still settles (unrouted, retried, throttled, dead-lettered, failed)', async () => {
    let i = 0;
    const s = setup(
      {
        adaptive: true,
        onFailure: 'dead-letter',
        retry: { ...DEFAULT_RETRY, maxRetries: 1, minDelay: 1, maxDelay: 1 },
      },
      () =>
        [
          { status: 429, error: statusError(429, true) },
          { status: 500, error: statusError(500, true) },
        ][i++] ?? { status: 400 },
      { metrics: false },
    );
    expect((await s.engine.deliver(msg({ topic: 'none' }))).status).toBe('unrouted');
    expect((await s.engine.deliver(msg())).status).toBe('dead-lettered');
    expect(s.calls).toHaveLength(3); // throttled, retried, final
    const r = setup({}, () => ({ status: 400 }), { metrics: false });
    expect((await r.engine.deliver(msg())).status).toBe('failed');
    expect((await r.engine.deliver(msg({ body: new Uint8Array(0) }))).status).toBe('failed');
    r.map.set('t', []);
    const ok = setup({}, undefined, { metrics: false });
    expect((await ok.engine.deliver(msg())).status).toBe('delivered');
  });

  it('logs: a failed delivery (warn, with each failure), a failing dead-letter handler (error), retries and unrouted (debug)', async () => {
    const log = memoryLogger();
    let i = 0;
    const s = setup(
      { retry: { ...DEFAULT_RETRY, maxRetries: 1, minDelay: 1, maxDelay: 1 } },
      () => (i++ === 0 ? { status: 503 } : { status: 400 }),
      { log },
    );
    await s.engine.deliver(msg({ id: 'm1' }));
    await s.engine.deliver(msg({ topic: 'none', id: 'm2' }));
    expect(log.lines).toEqual([
      {
        level: 'debug',
        obj: { function: 'a.ns', status: 503, attempt: 1, wait: expect.any(Number), reason: 'status_503' },
        msg: 'retrying invocation',
      },
      {
        level: 'warn',
        obj: { topic: 't', id: 'm1', failed: [{ function: 'a.ns', status: 400, err: 'answered 400' }] },
        msg: 'delivery failed; message left for redelivery',
      },
      { level: 'debug', obj: { topic: 'none', id: 'm2' }, msg: 'no function subscribed to topic' },
    ]);
    const bad = memoryLogger();
    const failure = new Error('disk full');
    const d = setup(
      {
        onFailure: 'dead-letter',
        deadLetter: () => {
          throw failure;
        },
      },
      () => ({ status: 400 }),
      { log: bad },
    );
    await d.engine.deliver(msg({ id: 'm3' }));
    expect(bad.lines[0]).toEqual({
      level: 'error',
      obj: { err: failure, topic: 't', id: 'm3' },
      msg: 'dead-letter handler failed; message left un-acked',
    });
  });

  it('waitForCapacity does not wake while a queued message takes the slot that was freed', async () => {
    const h1 = gate();
    const h2 = gate();
    let n = 0;
    const s = setup({ maxInFlight: 1 }, () => ({ status: 200, hold: n++ === 0 ? h1.promise : h2.promise }));
    const p1 = s.engine.deliver(msg());
    const p2 = s.engine.deliver(msg()); // queued for the only slot
    let woke = false;
    const w = s.engine.waitForCapacity().then(() => {
      woke = true;
    });
    h1.open();
    await p1;
    await waitFor(() => s.calls.length === 2);
    await tick();
    expect(woke).toBe(false); // the slot went to the queued message
    h2.open();
    await p2;
    await w;
    expect(woke).toBe(true);
  });

  it('max-inflight without adaptive is a fixed limit; a changed annotation applies without a restart', async () => {
    const hold = gate();
    const s = setup({}, () => ({ status: 200, hold: hold.promise }));
    s.map.set('t', [withAnnotations('a', { 'connector.dev/max-inflight': '1' })]);
    const first = [1, 2].map(() => s.engine.deliver(msg()));
    await waitFor(() => s.calls.length >= 1);
    await tick();
    expect(s.calls).toHaveLength(1); // one at a time
    s.map.set('t', [withAnnotations('a', { 'connector.dev/max-inflight': '3' })]); // a rebuild changed it
    const next = [1, 2, 3].map(() => s.engine.deliver(msg()));
    await waitFor(() => s.calls.length >= 3);
    await tick();
    expect(s.calls).toHaveLength(3); // three at once now
    hold.open();
    await Promise.all([...first, ...next]);
    expect(s.engine.adaptiveLimits().size).toBe(0);
  });

  it('adaptive: the limit falls on overload only, and follows a changed max-inflight', async () => {
    const replies: Reply[] = [];
    const s = setup(
      { adaptive: true, maxInFlight: 4, retry: noRetries },
      () => replies.shift() ?? { status: 200 },
    );
    for (let k = 0; k < 20; k++) await s.engine.deliver(msg());
    expect(s.engine.adaptiveLimits().get('a.ns')).toBe(4);
    replies.push({ status: 500, error: statusError(500, true) });
    await s.engine.deliver(msg());
    expect(s.engine.adaptiveLimits().get('a.ns')).toBe(4); // a plain failure is no overload signal
    replies.push({ status: 429, error: statusError(429, true) });
    await s.engine.deliver(msg());
    expect(s.engine.adaptiveLimits().get('a.ns')).toBe(3); // three quarters
    s.map.set('t', [withAnnotations('a', { 'connector.dev/max-inflight': '6' })]);
    for (let k = 0; k < 40; k++) await s.engine.deliver(msg());
    expect(s.engine.adaptiveLimits().get('a.ns')).toBe(6);
  });

  it('a 404: retried under maxRetries when the function is still one of the topic’s, counted as not_found', async () => {
    let i = 0;
    const s = setup({ retry: { ...DEFAULT_RETRY, maxRetries: 1, minDelay: 1, maxDelay: 1 } }, (c) =>
      c.fn === 'a.ns' && i++ === 0 ? { status: 404 } : { status: 200 },
    );
    s.map.set('t', [fn('a'), fn('b')]);
    expect((await s.engine.deliver(msg())).status).toBe('delivered');
    expect(s.calls.filter((c) => c.fn === 'a.ns')).toHaveLength(2);
    expect(s.counted.filter((c) => c.startsWith('retry('))).toEqual(['retry(a.ns,not_found)']);
  });

  it('names the map does not know: the result and dead letters carry the name', async () => {
    const s = setup();
    await s.engine.deliver(msg({ topic: 'none', functions: ['zzz'] }));
    expect(s.counted).toContain('invocation(zzz,0)');
    const big = setup({ maxMessageBytes: 1 });
    await big.engine.deliver(msg({ topic: 'none', functions: ['zzz'] }));
    expect(big.letters.map((l) => l.function)).toEqual(['zzz']);
  });

  it('a batched function’s expired message is dead-lettered before any batch exists', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      const s = setup({ onFailure: 'redeliver' });
      s.map.set('t', [
        withAnnotations('a', { 'connector.dev/batch-size': '2', 'connector.dev/max-age': '1s' }),
      ]);
      const out = await s.engine.deliver(msg({ timestamp: Date.now() - 60_000, orderingKey: 'k' }));
      expect(out.status).toBe('dead-lettered');
      expect((await s.engine.deliver(msg({ timestamp: Date.now() - 60_000 }))).status).toBe('dead-lettered');
      await tick();
      await tick();
      expect(unhandled).toEqual([]); // releasing the key line of a batcher never made is no error
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('DeliveryEngine (unit): back-off and stopping, precisely', () => {
  const tick = () => new Promise((r) => setImmediate(r));

  it('the back-off grows with the attempt (full jitter, its upper end here)', async () => {
    const log = memoryLogger();
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.999);
    try {
      const s = setup(
        { retry: { ...DEFAULT_RETRY, maxRetries: 3, minDelay: 10, maxDelay: 1000 } },
        () => ({ status: 503 }),
        { log },
      );
      await s.engine.deliver(msg());
      expect(
        log.lines.filter((l) => l.msg === 'retrying invocation').map((l) => (l.obj as { wait: number }).wait),
      ).toEqual([9, 19, 39]);
    } finally {
      random.mockRestore();
    }
  });

  it('abort during a back-off: nothing more is invoked; holding a function slot it still ends in ShutdownError', async () => {
    const s = setup({ retry: { ...DEFAULT_RETRY, minDelay: 60_000, maxDelay: 60_000 } }, () => ({
      status: 503,
    }));
    const p = s.engine.deliver(msg());
    await waitFor(() => s.published.length === 1);
    s.engine.abort();
    await expect(p).rejects.toSatisfy(isShutdownError);
    await tick();
    expect(s.calls).toHaveLength(1);

    const f = setup(
      { maxInFlightPerFunction: 1, retry: { ...DEFAULT_RETRY, minDelay: 60_000, maxDelay: 60_000 } },
      () => ({ status: 503 }),
    );
    const q = f.engine.deliver(msg());
    await waitFor(() => f.published.length === 1);
    f.engine.abort();
    await expect(q).rejects.toSatisfy(isShutdownError);
  });

  it('after a drain resolved, the next deliveries settle without error and a new drain resolves', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      const hold = gate();
      const s = setup({}, () => ({ status: 200, hold: hold.promise }));
      const p = s.engine.deliver(msg());
      const d = s.engine.drain(5000);
      hold.open();
      expect(await d).toBe(true);
      await p;
      expect((await s.engine.deliver(msg())).status).toBe('delivered');
      expect(await s.engine.drain(5000)).toBe(true);
      await tick();
      await tick();
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('DeliveryEngine (unit): abort while throttled', () => {
  it('abort during a throttled answer’s Retry-After: ShutdownError, nothing more is invoked', async () => {
    const s = setup({ adaptive: true }, () => ({
      status: 429,
      error: statusError(429, true),
      headers: { 'retry-after': '60' },
    }));
    const p = s.engine.deliver(msg());
    await waitFor(() => s.published.length === 1);
    s.engine.abort();
    await expect(p).rejects.toSatisfy(isShutdownError);
    await new Promise((r) => setImmediate(r));
    expect(s.calls).toHaveLength(1);
  });
});
