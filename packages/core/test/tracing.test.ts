import { startGateway, type TestGateway } from '@connector/testing';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type ConnectorOptions,
  createConnector,
  createController,
  type SourceMessage,
  TRACER_NAME,
  tracingEnabled,
} from '../src/index.js';
import { memorySource, waitFor } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function gateway(...args: Parameters<typeof startGateway>): Promise<TestGateway> {
  const g = await startGateway(...args);
  cleanups.push(() => g.close());
  return g;
}

async function setup(g: TestGateway, opts: Partial<ConnectorOptions> = {}, source = 'memory') {
  const controller = createController({ gatewayUrl: g.url, rebuildInterval: 60_000 });
  const mem = memorySource(source);
  const connector = createConnector({
    controller,
    source: mem.source,
    drainTimeout: 5000,
    ...opts,
    retry: { minDelay: 1, maxDelay: 5, ...opts.retry },
  });
  cleanups.push(() => connector.stop());
  await connector.start();
  return mem;
}

const fn = { name: 'f', annotations: { topic: 't' } };
const msg = (extra: Partial<SourceMessage> = {}): SourceMessage => ({
  topic: 't',
  body: Buffer.from('x'),
  ...extra,
});
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_ID}-01`;

/** `00-<trace id>-<span id>-<flags>` → its parts. */
function parseTraceparent(v: string | undefined) {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(v ?? '');
  if (!m) throw new Error(`not a traceparent: ${v}`);
  return { traceId: m[1], spanId: m[2] };
}

describe('tracing off (no SDK registered)', () => {
  it('allocates no span and forwards the message’s own traceparent and tracestate unchanged', async () => {
    expect(tracingEnabled()).toBe(false);
    const g = await gateway({ functions: [fn] });
    const mem = await setup(g);
    mem.push(msg({ headers: { traceparent: TRACEPARENT, tracestate: 'k=v' } }));
    await waitFor(() => mem.acked.length === 1);
    const req = g.invocations('f.openfaas-fn')[0]!;
    expect(req.headers['traceparent']).toBe(TRACEPARENT);
    expect(req.headers['tracestate']).toBe('k=v');
  });
});

describe('tracing with an SDK registered', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  beforeAll(() => provider.register());
  beforeEach(() => exporter.reset()); // after the previous test stopped its connector (redeliveries end there)
  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  /** The spans once the consumer span (which ends last) is exported. */
  const spans = async () => {
    await waitFor(() => exporter.getFinishedSpans().some((s) => s.kind === SpanKind.CONSUMER));
    const all = exporter.getFinishedSpans();
    const consumer = all.find((s) => s.kind === SpanKind.CONSUMER) as ReadableSpan;
    const attempts = all.filter((s) => s.kind === SpanKind.CLIENT);
    return { all, consumer, attempts };
  };
  const childOf = (child: ReadableSpan, parent: ReadableSpan) => {
    expect(child.spanContext().traceId).toBe(parent.spanContext().traceId);
    expect(child.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
  };

  it('a delivered message: a consumer span with one client span per attempt; the function gets its traceparent', async () => {
    expect(tracingEnabled()).toBe(true);
    const g = await gateway({ functions: [fn] });
    const mem = await setup(g);
    // A tracestate without a traceparent belongs to no trace: it is not forwarded under the attempt's traceparent.
    mem.push(msg({ id: 'm-1', headers: { tracestate: 'stale=1' } }));
    await waitFor(() => mem.acked.length === 1);
    const { all, consumer, attempts } = await spans();
    expect(all).toHaveLength(2);
    expect(consumer.instrumentationScope.name).toBe(TRACER_NAME);
    expect(consumer.name).toBe('process memory');
    expect(consumer.parentSpanContext).toBeUndefined(); // a message without trace context starts a trace
    expect(consumer.attributes).toMatchObject({
      'messaging.system': 'memory',
      'messaging.destination.name': 't',
      'messaging.operation.type': 'process',
      'messaging.message.id': 'm-1',
      'messaging.message.body.size': 1,
      'connector.outcome': 'delivered',
    });
    expect(consumer.status.code).toBe(SpanStatusCode.UNSET);
    expect(attempts).toHaveLength(1);
    const [attempt] = attempts as [ReadableSpan];
    childOf(attempt, consumer);
    expect(attempt.name).toBe('POST');
    expect(attempt.attributes).toMatchObject({
      'http.request.method': 'POST',
      'url.full': `${g.url}/function/f.openfaas-fn`,
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(g.url).port),
      'http.response.status_code': 200,
      'faas.invoked_name': 'f.openfaas-fn',
    });
    expect(attempt.attributes['http.request.resend_count']).toBeUndefined();
    const sent = parseTraceparent(g.invocations('f.openfaas-fn')[0]?.headers['traceparent']);
    expect(sent).toEqual({ traceId: attempt.spanContext().traceId, spanId: attempt.spanContext().spanId });
    expect(g.invocations('f.openfaas-fn')[0]?.headers['tracestate']).toBeUndefined();
  });

  it('a retried message: one client span per attempt with http.request.resend_count, retries as events', async () => {
    const g = await gateway({ functions: [fn] });
    g.fault('f.openfaas-fn', { status: 503, times: 2 });
    const mem = await setup(g, { retry: { maxRetries: 3 } });
    mem.push(msg());
    await waitFor(() => mem.acked.length === 1);
    const { consumer, attempts } = await spans();
    expect(attempts).toHaveLength(3);
    for (const a of attempts) childOf(a, consumer);
    expect(
      attempts.map((a) => [
        a.attributes['http.request.resend_count'],
        a.attributes['http.response.status_code'],
        a.status.code,
      ]),
    ).toEqual([
      [undefined, 503, SpanStatusCode.ERROR],
      [1, 503, SpanStatusCode.ERROR],
      [2, 200, SpanStatusCode.UNSET],
    ]);
    expect(attempts[0]?.attributes['error.type']).toBe('503');
    expect(
      consumer.events.map((e) => [
        e.name,
        e.attributes?.['connector.attempt'],
        e.attributes?.['connector.retry.reason'],
      ]),
    ).toEqual([
      ['retry', 1, 'status_503'],
      ['retry', 2, 'status_503'],
    ]);
    expect(consumer.status.code).toBe(SpanStatusCode.UNSET);
    // Each attempt carried its own span's context.
    const sent = g.invocations('f.openfaas-fn').map((r) => parseTraceparent(r.headers['traceparent']).spanId);
    expect(sent).toEqual(attempts.map((a) => a.spanContext().spanId));
  });

  it('a dead-lettered message: a dead_letter event and an error status', async () => {
    const g = await gateway({
      functions: [{ ...fn, handler: () => ({ status: 400 }) }],
    });
    const mem = await setup(g, { onFailure: 'dead-letter' });
    mem.push(msg());
    await waitFor(() => mem.outcomes.length === 1);
    expect(mem.outcomes[0]?.status).toBe('dead-lettered');
    const { consumer, attempts } = await spans();
    expect(consumer.events.map((e) => [e.name, e.attributes])).toEqual([
      [
        'dead_letter',
        {
          'faas.invoked_name': 'f.openfaas-fn',
          'error.type': 'ERR_INVOKE_STATUS',
          'connector.attempt': 1,
          'http.response.status_code': 400,
        },
      ],
    ]);
    expect(consumer.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'function f.openfaas-fn answered 400',
    });
    expect(consumer.attributes).toMatchObject({
      'connector.outcome': 'dead-lettered',
      'error.type': 'ERR_INVOKE_STATUS',
    });
    expect(attempts.map((a) => [a.status.code, a.attributes['error.type']])).toEqual([
      [SpanStatusCode.ERROR, '400'],
    ]);
  });

  it('a message left for redelivery: an error status and no dead_letter event', async () => {
    const g = await gateway({ functions: [{ ...fn, handler: () => ({ status: 500 }) }] });
    const mem = await setup(g, { onFailure: 'redeliver' });
    mem.push(msg());
    await waitFor(() => mem.outcomes.length >= 1); // the broker (memorySource) redelivers it at once, again and again
    expect(mem.outcomes[0]?.status).toBe('failed');
    const { consumer } = await spans();
    expect(consumer.status.code).toBe(SpanStatusCode.ERROR);
    expect(consumer.attributes['connector.outcome']).toBe('failed');
    expect(consumer.events.filter((e) => e.name === 'dead_letter')).toEqual([]);
  });

  it('a message with trace context (a Kafka byte header, any case): its trace continues to the function', async () => {
    const g = await gateway({ functions: [fn] });
    const mem = await setup(g, {}, 'kafka');
    mem.push(
      msg({
        headers: { TraceParent: new TextEncoder().encode(TRACEPARENT), tracestate: 'k=v' },
        id: 't/2/41',
        partition: '2',
        offset: '41',
      }),
    );
    await waitFor(() => mem.acked.length === 1);
    const { consumer, attempts } = await spans();
    expect(consumer.spanContext().traceId).toBe(TRACE_ID);
    expect(consumer.parentSpanContext?.spanId).toBe(PARENT_ID);
    expect(consumer.attributes).toMatchObject({
      'messaging.system': 'kafka',
      'messaging.destination.partition.id': '2',
      'messaging.kafka.offset': 41,
      'messaging.message.id': 't/2/41',
    });
    childOf(attempts[0] as ReadableSpan, consumer);
    const req = g.invocations('f.openfaas-fn')[0]!;
    const sent = parseTraceparent(req.headers['traceparent']);
    expect(sent.traceId).toBe(TRACE_ID);
    expect(sent.spanId).toBe(attempts[0]?.spanContext().spanId); // the attempt's, not the message's
    expect(req.headers['tracestate']).toBe('k=v');
  });
});
