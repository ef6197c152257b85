import {
  type FunctionHandler,
  type FunctionRequest,
  memoryLogger,
  startGateway,
  type TestGateway,
} from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BATCH_CONTENT_TYPE,
  type ConnectorOptions,
  createConnector,
  createController,
  DEFAULT_BATCH_BYTES,
  DEFAULT_RETRY,
  type FunctionInfo,
  Policies,
  type SourceMessage,
} from '../src/index.js';
import { memorySource, recordingConnector, waitFor } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** One item of a batch body, as a function sees it. */
interface Item {
  id: string;
  topic: string;
  key?: string;
  headers: Record<string, string>;
  contentType?: string;
  body?: string;
  bodyBase64?: string;
}

const itemsOf = (req: { body: Buffer }): Item[] =>
  (JSON.parse(req.body.toString('utf8')) as { items: Item[] }).items;
/** The bodies of each batch request the gateway received for `fn`, in arrival order. */
const batches = (g: TestGateway, fn = 'f.openfaas-fn'): string[][] =>
  g.invocations(fn).map((r) => itemsOf(r).map((i) => i.body ?? `base64:${i.bodyBase64}`));

/** A function answering `batchItemFailures` for the items whose body `fails` picks. */
const failing =
  (fails: (body: string, req: FunctionRequest) => boolean): FunctionHandler =>
  (req) => {
    const failed = itemsOf(req)
      .filter((i) => fails(i.body ?? '', req))
      .map((i) => ({ itemIdentifier: i.id }));
    return {
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ batchItemFailures: failed }),
    };
  };

async function gateway(annotations: Record<string, string>, handler?: FunctionHandler) {
  const g = await startGateway({
    functions: [
      { name: 'f', annotations: { topic: 't', ...annotations }, ...(handler ? { handler } : {}) },
      { name: 'plain', annotations: { topic: 'p' } },
    ],
  });
  cleanups.push(() => g.close());
  return g;
}

const setup = (g: TestGateway, opts: Partial<ConnectorOptions> = {}, asyncInvocation = false) =>
  recordingConnector(g.url, { controller: { asyncInvocation }, connector: opts }, (c) => cleanups.push(c));

const msg = (body: string | Uint8Array, extra: Partial<SourceMessage> = {}): SourceMessage => ({
  topic: 't',
  body: typeof body === 'string' ? Buffer.from(body) : body,
  ...extra,
});
const many = (n: number, prefix = 'm') => Array.from({ length: n }, (_, i) => msg(`${prefix}${i}`));

describe('batch delivery (connector.dev/batch-*)', () => {
  it('forms a batch by size: one request per batch-size messages, every message acked on its own outcome', async () => {
    const g = await gateway({ 'connector.dev/batch-size': '5', 'connector.dev/batch-window': '1m' });
    const { mem } = await setup(g);
    mem.push(...many(10));
    await waitFor(() => mem.acked.length === 10);
    expect(batches(g).map((b) => b.length)).toEqual([5, 5]);
    expect(batches(g).flat().sort()).toEqual(
      many(10)
        .map((m) => Buffer.from(m.body).toString())
        .sort(),
    );
    expect(mem.outcomes.map((o) => o.status)).toEqual(Array(10).fill('delivered'));
    const req = g.invocations('f.openfaas-fn')[0];
    expect(req?.headers['content-type']).toBe(BATCH_CONTENT_TYPE);
    expect(req?.headers['x-topic']).toBeUndefined();
    expect(req?.headers['x-connector']).toBeDefined();
  });

  it('forms a batch by window: fewer messages than batch-size go together once the first has waited', async () => {
    const g = await gateway({ 'connector.dev/batch-size': '100', 'connector.dev/batch-window': '100ms' });
    const { mem } = await setup(g);
    mem.push(...many(3));
    await waitFor(() => mem.acked.length === 3);
    expect(batches(g)).toEqual([['m0', 'm1', 'm2']]);
  });

  it('each item carries id, topic, key, headers (header policy), content type; non-UTF-8 bodies in base64', async () => {
    const g = await gateway({ 'connector.dev/batch-size': '2', 'connector.dev/batch-window': '1m' });
    const { mem } = await setup(g);
    const binary = new Uint8Array([0xff, 0xfe, 0x00, 0x01]);
    mem.push(
      msg('{"a":1}', {
        key: 'k1',
        contentType: 'application/json',
        headers: { 'x-custom': 'v', connection: 'close' },
      }),
      msg(binary),
    );
    await waitFor(() => mem.acked.length === 2);
    const items = itemsOf(g.invocations('f.openfaas-fn')[0] as { body: Buffer });
    expect(items[0]).toEqual({
      id: '0',
      topic: 't',
      key: 'k1',
      headers: { 'x-custom': 'v' }, // `connection` is refused by the header policy
      contentType: 'application/json',
      body: '{"a":1}',
    });
    expect(items[1]).toEqual({
      id: '1',
      topic: 't',
      headers: {},
      bodyBase64: Buffer.from(binary).toString('base64'),
    });
  });

  it('the body is byte for byte JSON.stringify of its items, whatever the bodies, keys and headers hold', async () => {
    const bodies: (string | Uint8Array)[] = [
      'plain text',
      'a quote " alone',
      'a backslash \\ alone',
      'a control \u001f alone',
      'controls \n\t\r\u0000 and DEL \u007f',
      'héllo ✓ 😀 \u2028\u2029',
      '\ufeffa byte order mark first',
      '',
      '{"a":[1,2,{"b":"c"}]}',
      new Uint8Array([0x61, 0xc3]), // cut in the middle of a character: not UTF-8
      new Uint8Array([0xed, 0xa0, 0x80]), // a lone surrogate encoded: not UTF-8
    ];
    const g = await gateway({
      'connector.dev/batch-size': String(bodies.length),
      'connector.dev/batch-window': '1m',
    });
    const { mem } = await setup(g);
    mem.push(
      ...bodies.map((b, i) =>
        msg(b, {
          ...(i % 2 === 0 ? { key: `k"${i}\\é` } : {}),
          ...(i % 3 === 0 ? { headers: { 'x-n': `v ${i}`, 'x-u': 'ü' } } : {}),
          ...(i === 4 ? { contentType: 'text/plain; charset="utf-8"' } : {}),
        }),
      ),
    );
    await waitFor(() => mem.acked.length === bodies.length);
    const raw = (g.invocations('f.openfaas-fn')[0] as { body: Buffer }).body;
    const expected = itemsOf({ body: raw }).map((item, i) => {
      const b = Buffer.from(bodies[i] as string | Uint8Array);
      const utf8 = typeof bodies[i] === 'string';
      const { body: _b, bodyBase64: _b64, ...rest } = item;
      return utf8 ? { ...rest, body: b.toString('utf8') } : { ...rest, bodyBase64: b.toString('base64') };
    });
    expect(raw.equals(Buffer.from(JSON.stringify({ items: expected })))).toBe(true);
    expect(itemsOf({ body: raw }).map((it) => it.body ?? `base64:${it.bodyBase64}`)).toEqual(
      bodies.map((b) => (typeof b === 'string' ? b : `base64:${Buffer.from(b).toString('base64')}`)),
    );
  });

  it('partial failure: exactly the listed items are retried, in a later batch; the rest succeed once', async () => {
    const seen = new Map<string, number>();
    const g = await gateway(
      { 'connector.dev/batch-size': '4', 'connector.dev/batch-window': '50ms' },
      failing((body) => {
        const n = (seen.get(body) ?? 0) + 1;
        seen.set(body, n);
        return (body === 'm1' || body === 'm3') && n === 1; // fail once each
      }),
    );
    const { mem, results } = await setup(g);
    mem.push(...many(4));
    await waitFor(() => mem.acked.length === 4);
    const b = batches(g);
    expect(b[0]).toEqual(['m0', 'm1', 'm2', 'm3']);
    expect(b.slice(1).flat().sort()).toEqual(['m1', 'm3']); // only the failed ones again
    expect(mem.outcomes.map((o) => o.status)).toEqual(Array(4).fill('delivered'));
    expect(mem.notAcked).toHaveLength(0);
    const retried = results.filter((r) => !r.final);
    expect(retried).toHaveLength(2);
    expect(retried.every((r) => r.error?.code === 'ERR_BATCH_ITEM_FAILED' && r.error.canRetry)).toBe(true);
    expect(results.filter((r) => r.final && r.error === undefined)).toHaveLength(4);
  });

  it('a non-2xx answer fails every item of the batch (each retried per policy)', async () => {
    const g = await gateway({ 'connector.dev/batch-size': '3', 'connector.dev/batch-window': '1m' });
    g.fault('f.openfaas-fn', { status: 503, times: 1 });
    const { mem, results } = await setup(g);
    mem.push(...many(3));
    await waitFor(() => mem.acked.length === 3);
    expect(results.filter((r) => r.status === 503)).toHaveLength(3);
    // Every item came again after the 503 (the retries may form one batch or several, by timing).
    expect(batches(g).flat().sort()).toEqual(['m0', 'm0', 'm1', 'm1', 'm2', 'm2']);
    expect(mem.outcomes.map((o) => o.status)).toEqual(Array(3).fill('delivered'));
  });

  it('a 2xx answer that cannot be read fails every item (retried: at least once)', async () => {
    let calls = 0;
    const g = await gateway({ 'connector.dev/batch-size': '2', 'connector.dev/batch-window': '1m' }, () =>
      ++calls === 1 ? { status: 200, body: 'OK' } : { status: 200, body: '' },
    );
    const { mem, results } = await setup(g);
    mem.push(...many(2));
    await waitFor(() => mem.acked.length === 2);
    const first = results.filter((r) => !r.final);
    expect(first).toHaveLength(2);
    expect(first[0]?.error?.message).toContain('not JSON');
    expect(batches(g).flat().sort()).toEqual(['m0', 'm0', 'm1', 'm1']);
  });

  it('an unknown itemIdentifier makes the answer unreadable: every item fails', async () => {
    const g = await gateway(
      {
        'connector.dev/batch-size': '2',
        'connector.dev/batch-window': '1m',
        'com.openfaas.retry.attempts': '1',
      },
      () => ({ status: 200, body: JSON.stringify({ batchItemFailures: [{ itemIdentifier: 'nope' }] }) }),
    );
    const { mem } = await setup(g, { onFailure: 'dead-letter' });
    mem.push(...many(2));
    await waitFor(() => mem.acked.length === 2);
    expect(mem.outcomes.map((o) => o.status)).toEqual(['dead-lettered', 'dead-lettered']);
  });

  it('an itemIdentifier sent back as a number names the same item', async () => {
    let calls = 0;
    const g = await gateway({ 'connector.dev/batch-size': '2', 'connector.dev/batch-window': '1m' }, () => ({
      status: 200,
      body: JSON.stringify({ batchItemFailures: ++calls === 1 ? [{ itemIdentifier: 1 }] : [] }),
    }));
    const { mem } = await setup(g);
    mem.push(...many(2), msg('m2'));
    await waitFor(() => mem.acked.length === 3);
    expect(batches(g)).toEqual([
      ['m0', 'm1'],
      ['m2', 'm1'],
    ]);
  });

  it('async invocation: the queued batch (202) counts as every item delivered', async () => {
    const g = await gateway({ 'connector.dev/batch-size': '2', 'connector.dev/batch-window': '1m' });
    const { mem, results } = await setup(g, {}, true);
    mem.push(...many(2));
    await waitFor(() => mem.acked.length === 2);
    expect(g.invocations('f.openfaas-fn').map((r) => r.async)).toEqual([true]);
    expect(results.map((r) => [r.status, r.async, r.error])).toEqual([
      [202, true, undefined],
      [202, true, undefined],
    ]);
  });

  it('a message over batch-bytes goes alone in its batch, at once, without breaking the batch around it', async () => {
    const g = await gateway({
      'connector.dev/batch-size': '3',
      'connector.dev/batch-bytes': '10',
      'connector.dev/batch-window': '1m',
    });
    const { mem } = await setup(g);
    const big = 'x'.repeat(20);
    mem.push(msg('a'), msg(big), msg('b'), msg('c'));
    await waitFor(() => mem.acked.length === 4, { timeout: 5000 });
    expect(batches(g)).toEqual([[big], ['a', 'b', 'c']]);
  });

  it('batch-bytes bounds a batch: the item that would go over starts the next one', async () => {
    const g = await gateway({
      'connector.dev/batch-size': '3',
      'connector.dev/batch-bytes': '10',
      'connector.dev/batch-window': '1m',
    });
    const { mem } = await setup(g);
    mem.push(msg('aaaa'), msg('bbbb'), msg('cccc'), msg('d'), msg('e'));
    await waitFor(() => mem.acked.length === 5);
    expect(batches(g)).toEqual([
      ['aaaa', 'bbbb'],
      ['cccc', 'd', 'e'],
    ]);
  });

  it('a batch-size over max_inflight is warned about once: batches then go by their window', async () => {
    const g = await gateway({ 'connector.dev/batch-size': '10', 'connector.dev/batch-window': '30ms' });
    const { mem, log } = await setup(g, { maxInFlight: 4 });
    mem.push(...many(8));
    await waitFor(() => mem.acked.length === 8);
    expect(Math.max(...batches(g).map((b) => b.length))).toBeLessThanOrEqual(4);
    const warned = log.lines.filter((l) =>
      l.msg?.startsWith('connector.dev/batch-size is over max_inflight'),
    );
    expect(warned).toHaveLength(1);
  });

  it('a function without the annotation gets one request per message, as before', async () => {
    const g = await gateway({ 'connector.dev/batch-size': '5' });
    const { mem } = await setup(g);
    mem.push(msg('a', { topic: 'p' }), msg('b', { topic: 'p' }), msg('c', { topic: 'p' }));
    await waitFor(() => mem.acked.length === 3);
    const reqs = g.invocations('plain.openfaas-fn');
    expect(reqs.map((r) => r.body.toString()).sort()).toEqual(['a', 'b', 'c']);
    expect(reqs.every((r) => r.headers['content-type'] !== BATCH_CONTENT_TYPE)).toBe(true);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(0);
  });

  it('an item that keeps failing is dead-lettered after its attempts; the others are delivered', async () => {
    const g = await gateway(
      {
        'connector.dev/batch-size': '3',
        'connector.dev/batch-window': '20ms',
        'com.openfaas.retry.attempts': '3',
        'connector.dev/on-failure': 'dead-letter',
      },
      failing((body) => body === 'm1'),
    );
    const { mem, letters } = await setup(g);
    mem.push(...many(3));
    await waitFor(() => mem.acked.length === 3);
    expect(letters).toHaveLength(1);
    expect(Buffer.from(letters[0]?.message.body ?? []).toString()).toBe('m1');
    expect(letters[0]?.result.error?.code).toBe('ERR_BATCH_ITEM_FAILED');
    expect(
      batches(g)
        .flat()
        .filter((b) => b === 'm1'),
    ).toHaveLength(3);
    const byBody = new Map(
      mem.acked.map((m, i) => [Buffer.from(m.body).toString(), mem.outcomes[i]?.status]),
    );
    expect(Object.fromEntries(byBody)).toEqual({ m0: 'delivered', m1: 'dead-lettered', m2: 'delivered' });
  });

  it('redeliver policy: a failed item is left un-acked while the rest of its batch is acked', async () => {
    const g = await gateway(
      {
        'connector.dev/batch-size': '2',
        'connector.dev/batch-window': '1m',
        'com.openfaas.retry.attempts': '1',
      },
      failing((body) => body === 'm0' && g.invocations('f.openfaas-fn').length <= 1),
    );
    const { mem } = await setup(g, { onFailure: 'redeliver' });
    mem.push(...many(2), msg('m2'));
    // m0 fails in the first batch and is redelivered by the broker; it then pairs with m2.
    await waitFor(() => mem.acked.length === 3);
    expect(mem.notAcked.map((m) => Buffer.from(m.body).toString())).toEqual(['m0']);
    expect(batches(g)).toEqual([
      ['m0', 'm1'],
      ['m2', 'm0'],
    ]);
  });

  it('a batch holds one per-function slot (max-inflight 1): batches go one at a time', async () => {
    let active = 0;
    let most = 0;
    const g = await gateway(
      {
        'connector.dev/batch-size': '2',
        'connector.dev/batch-window': '1m',
        'connector.dev/max-inflight': '1',
      },
      async () => {
        most = Math.max(most, ++active);
        await new Promise((r) => setTimeout(r, 20));
        active--;
        return { status: 200 };
      },
    );
    const { mem } = await setup(g);
    mem.push(...many(6));
    await waitFor(() => mem.acked.length === 6);
    expect(batches(g).map((b) => b.length)).toEqual([2, 2, 2]);
    expect(most).toBe(1);
  });
});

describe('batch annotations (Policies)', () => {
  const defaults = {
    retry: DEFAULT_RETRY,
    maxInFlightPerFunction: undefined,
    onFailure: 'redeliver',
    adaptive: false,
  } as const;
  const fn = (annotations: Record<string, string>): FunctionInfo => ({
    name: 'f',
    namespace: 'openfaas-fn',
    address: 'f.openfaas-fn',
    topics: ['t'],
    annotations,
  });

  it('reads batch-size, batch-bytes and batch-window; size 1 or absent means no batching', () => {
    const p = new Policies(defaults, memoryLogger());
    expect(p.of(fn({ 'connector.dev/batch-size': '50' })).batch).toEqual({
      size: 50,
      bytes: DEFAULT_BATCH_BYTES,
      window: 20,
    });
    expect(
      p.of(
        fn({
          'connector.dev/batch-size': '10',
          'connector.dev/batch-bytes': '4096',
          'connector.dev/batch-window': '1s',
        }),
      ).batch,
    ).toEqual({ size: 10, bytes: 4096, window: 1000 });
    expect(p.of(fn({ 'connector.dev/batch-size': '1' })).batch).toBeUndefined();
    expect(p.of(fn({ 'connector.dev/batch-window': '1s' })).batch).toBeUndefined();
    expect(p.defaults.batch).toBeUndefined();
  });

  it('an invalid batch value is warned once; the default applies', () => {
    const log = memoryLogger();
    const p = new Policies(defaults, log);
    const bad = { 'connector.dev/batch-size': 'many', 'connector.dev/batch-window': 'soon' };
    expect(p.of(fn(bad)).batch).toBeUndefined();
    expect(p.of(fn({ 'connector.dev/batch-size': '5', 'connector.dev/batch-window': 'soon' })).batch).toEqual(
      {
        size: 5,
        bytes: DEFAULT_BATCH_BYTES,
        window: 20,
      },
    );
    const warned = log.lines
      .filter((l) => l.msg === 'invalid annotation ignored; the default applies')
      .map((w) => (w.obj as { annotation: string }).annotation);
    expect(warned.sort()).toEqual(['connector.dev/batch-size', 'connector.dev/batch-window']);
  });
});

describe('batch delivery and stopping', () => {
  it('stop sends the batches waiting for their window instead of waiting for it', async () => {
    const g = await startGateway({
      functions: [
        {
          name: 'f',
          annotations: { topic: 't', 'connector.dev/batch-size': '10', 'connector.dev/batch-window': '1h' },
        },
      ],
    });
    cleanups.push(() => g.close());
    const controller = createController({
      gatewayUrl: g.url,
      rebuildInterval: 60_000,
      logger: memoryLogger(),
    });
    const mem = memorySource();
    const connector = createConnector({ controller, source: mem.source, logger: memoryLogger() });
    await connector.start();
    mem.push(msg('a'), msg('b'));
    await waitFor(() => connector.pending() === 2);
    const started = Date.now();
    await connector.stop();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(mem.acked).toHaveLength(2);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(1);
  });
});

describe('batch delivery and ordering keys', () => {
  const keyed = (key: string, ...bodies: string[]) => bodies.map((b) => msg(b, { orderingKey: key }));
  const bodyOf = (m: SourceMessage) => Buffer.from(m.body).toString();

  it('messages of one key share a batch; behind a failed item the later ones of its key go again, in order', async () => {
    let calls = 0;
    const g = await gateway(
      { 'connector.dev/batch-size': '10', 'connector.dev/batch-window': '50ms' },
      failing((body) => body === 'a2' && ++calls === 1),
    );
    const { mem, results } = await setup(g);
    mem.push(...keyed('A', 'a1', 'a2', 'a3', 'a4'), ...keyed('B', 'b1', 'b2'));
    await waitFor(() => mem.acked.length === 6);
    expect(batches(g)).toEqual([
      ['a1', 'a2', 'a3', 'a4', 'b1', 'b2'],
      ['a2', 'a3', 'a4'], // a3 and a4 held back behind a2 (b1, b2 of another key succeeded)
    ]);
    expect(mem.outcomes.map((o) => o.status)).toEqual(Array(6).fill('delivered'));
    const held = results.filter((r) => r.error?.code === 'ERR_BATCH_ITEM_HELD');
    expect(held).toHaveLength(2);
    expect(held.every((r) => !r.final && r.attempt === 1)).toBe(true);
  });

  it('a key has one batch in flight at a time, and a failure holds back its later messages not yet batched', async () => {
    let failedOnce = false;
    const inFlight = new Map<string, number>();
    let overlap = false;
    const g = await gateway(
      { 'connector.dev/batch-size': '2', 'connector.dev/batch-window': '1m' },
      async (req) => {
        const keys = new Set(itemsOf(req).map((i) => i.body?.[0] ?? ''));
        for (const k of keys) {
          if ((inFlight.get(k) ?? 0) > 0) overlap = true;
          inFlight.set(k, (inFlight.get(k) ?? 0) + 1);
        }
        await new Promise((r) => setTimeout(r, 20));
        for (const k of keys) inFlight.set(k, (inFlight.get(k) ?? 1) - 1);
        return failing((body) => {
          if (body !== 'a1' || failedOnce) return false;
          failedOnce = true;
          return true;
        })(req);
      },
    );
    const { mem } = await setup(g);
    mem.push(...keyed('A', 'a1', 'a2', 'a3', 'a4'));
    await waitFor(() => mem.acked.length === 4);
    expect(batches(g)).toEqual([
      ['a1', 'a2'],
      ['a1', 'a2'],
      ['a3', 'a4'],
    ]);
    expect(overlap).toBe(false);
  });

  it('after a failed item is final (dead-lettered), the later messages of its key go on', async () => {
    const g = await gateway(
      {
        'connector.dev/batch-size': '10',
        'connector.dev/batch-window': '30ms',
        'com.openfaas.retry.attempts': '2',
        'connector.dev/on-failure': 'dead-letter',
      },
      failing((body) => body === 'a1'),
    );
    const { mem, letters } = await setup(g);
    mem.push(...keyed('A', 'a1', 'a2', 'a3'));
    await waitFor(() => mem.acked.length === 3);
    expect(letters.map((l) => bodyOf(l.message))).toEqual(['a1']);
    expect(mem.outcomes.map((o) => o.status)).toEqual(['dead-lettered', 'delivered', 'delivered']);
    const b = batches(g);
    expect(b[0]).toEqual(['a1', 'a2', 'a3']);
    expect(b[1]).toEqual(['a1', 'a2', 'a3']); // the retry, the held ones behind it
    expect(b.slice(2).flat()).toEqual(['a2', 'a3']); // after a1 is final
  });
});

describe('batch delivery: what operators see', () => {
  it('retries of batch items are counted by reason: failed, or held behind a failed item of their key', async () => {
    const seen = new Set<string>();
    const g = await gateway(
      { 'connector.dev/batch-size': '10', 'connector.dev/batch-window': '30ms' },
      failing((body) => {
        const first = !seen.has(body);
        seen.add(body);
        return body === 'a1' && first; // a1 fails once; a2 behind it is held back
      }),
    );
    const { mem, connector } = await setup(g);
    mem.push(msg('a1', { orderingKey: 'A' }), msg('a2', { orderingKey: 'A' }));
    await waitFor(() => mem.acked.length === 2);
    const text = await connector.metrics.metrics();
    expect(text).toMatch(
      /connector_retries_total\{function="f.openfaas-fn",reason="ERR_BATCH_ITEM_FAILED"\} 1\n/,
    );
    expect(text).toMatch(
      /connector_retries_total\{function="f.openfaas-fn",reason="ERR_BATCH_ITEM_HELD"\} 1\n/,
    );
  });

  it('a batch-size at max_inflight is not warned about; one over it is, naming the function and both numbers', async () => {
    const at = await gateway({ 'connector.dev/batch-size': '4', 'connector.dev/batch-window': '10ms' });
    const a = await setup(at, { maxInFlight: 4 });
    a.mem.push(...many(2));
    await waitFor(() => a.mem.acked.length === 2);
    const warning = (l: { msg?: string | undefined }) =>
      l.msg?.startsWith('connector.dev/batch-size is over max_inflight');
    expect(a.log.lines.filter(warning)).toEqual([]);
    const over = await gateway({ 'connector.dev/batch-size': '5', 'connector.dev/batch-window': '10ms' });
    const o = await setup(over, { maxInFlight: 4 });
    o.mem.push(...many(2));
    await waitFor(() => o.mem.acked.length === 2);
    expect(o.log.lines.filter(warning).map((l) => l.obj)).toEqual([
      { function: 'f.openfaas-fn', batchSize: 5, maxInFlight: 4 },
    ]);
  });
});

describe('batch delivery and stopping, a batcher made late', () => {
  it('a batched function’s first message routed only after stop (behind its key) is sent at once, not after the window', async () => {
    let release!: () => void;
    const busy = new Promise<void>((r) => {
      release = r;
    });
    cleanups.push(async () => release());
    const g = await startGateway({
      functions: [
        {
          name: 'f',
          annotations: { topic: 't', 'connector.dev/batch-size': '10', 'connector.dev/batch-window': '1h' },
        },
        {
          name: 'slow',
          annotations: { topic: 's' },
          handler: async () => {
            await busy;
            return { status: 200 };
          },
        },
      ],
    });
    cleanups.push(() => g.close());
    const { mem, connector } = await setup(g);
    // 'a' waits behind 'first' of its key: f has no batcher yet when the connector stops
    mem.push(msg('first', { topic: 's', orderingKey: 'K' }), msg('a', { orderingKey: 'K' }));
    await waitFor(() => connector.pending() === 2 && g.invocations('slow.openfaas-fn').length === 1);
    const started = Date.now();
    const stopped = connector.stop();
    release();
    await stopped;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(mem.acked).toHaveLength(2);
    expect(g.invocations('f.openfaas-fn')).toHaveLength(1);
  });
});
