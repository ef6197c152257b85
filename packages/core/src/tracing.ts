/**
 * OpenTelemetry tracing through `@opentelemetry/api` only: a no-op until the application registers an SDK.
 * A consumer span per message (messaging conventions), a client span per invocation attempt (HTTP conventions, in
 * the invoker), retries and dead letters as events. With no SDK registered, `deliveryTrace` returns undefined
 * after a few property reads: nothing is allocated per message.
 */
import {
  type Attributes,
  type Context,
  ProxyTracerProvider,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { type MessageHeaders, messageHeader } from './headers.js';
import type { DeliveryOutcome, SourceMessage } from './source.js';
import type { InvokeResult } from './types.js';

/** Name of the tracer (the instrumentation scope) core's spans are made by. */
export const TRACER_NAME = '@connector/core';

// The provider `trace` hands out before an SDK registers one (a proxy's delegate is this no-op until then).
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/** True when an SDK tracer provider is registered (the global provider is not the API's no-op). Cheap: no
 * allocation, a few property reads. */
export function tracingEnabled(): boolean {
  const p = trace.getTracerProvider() as TracerProvider & { getDelegate?: () => TracerProvider };
  const d = typeof p.getDelegate === 'function' ? p.getDelegate() : p;
  // A second copy of the API has its own no-op instance: recognise it by its class too.
  return d !== NOOP_PROVIDER && d.constructor?.name !== 'NoopTracerProvider';
}

let cachedTracer: Tracer | undefined;
let cachedFor: TracerProvider | undefined;

/** The tracer of the current global provider (looked up again when the provider changes). */
function tracer(): Tracer {
  const p = trace.getTracerProvider();
  const d = (p as { getDelegate?: () => TracerProvider }).getDelegate?.() ?? p;
  if (cachedTracer === undefined || cachedFor !== d) {
    cachedTracer = d.getTracer(TRACER_NAME);
    cachedFor = d;
  }
  return cachedTracer;
}

/** Reads a message's raw headers for a propagator: names case-insensitively, byte values as UTF-8. */
const headerGetter: TextMapGetter<MessageHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => messageHeader(carrier, key),
};

/** `messaging.system` of a source name (the conventions' value where one exists, else the source's name). */
function messagingSystem(source: string): string {
  return source === 'sqs' ? 'aws_sqs' : source;
}

/** The trace of one message's delivery: its consumer span, and the context its attempts are children of. */
export interface DeliveryTrace {
  /** The consumer span (`process`). */
  readonly span: Span;
  /** Context holding `span`: the parent of each attempt's client span. */
  readonly context: Context;
}

/**
 * Start the consumer span of a message, continuing the message's own trace context (its `traceparent` /
 * `tracestate` headers, read by the registered propagator) when it has one. Undefined when tracing is off.
 */
export function deliveryTrace(msg: SourceMessage, source: string): DeliveryTrace | undefined {
  if (!tracingEnabled()) return undefined;
  const parent =
    msg.headers === undefined ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, msg.headers, headerGetter);
  const attributes: Attributes = {
    'messaging.system': messagingSystem(source),
    'messaging.operation.type': 'process',
    'messaging.operation.name': 'process',
    'messaging.destination.name': msg.topic,
    'messaging.message.body.size': msg.body.byteLength,
  };
  if (msg.id !== undefined) attributes['messaging.message.id'] = msg.id;
  if (msg.partition !== undefined) attributes['messaging.destination.partition.id'] = msg.partition;
  if (msg.offset !== undefined && source === 'kafka')
    attributes['messaging.kafka.offset'] = Number(msg.offset);
  // Named by operation and source, not by topic: topics can carry ids (MQTT `sensors/<device>/temp`).
  const span = tracer().startSpan(`process ${source}`, { kind: SpanKind.CONSUMER, attributes }, parent);
  return { span, context: trace.setSpan(parent, span) };
}

/** Record a retry (or a throttled attempt queued again) on the message's span. */
export function traceRetry(t: DeliveryTrace, r: InvokeResult, reason: string, delayMs?: number): void {
  const attributes: Attributes = {
    'faas.invoked_name': r.function,
    'connector.attempt': r.attempt,
    'connector.retry.reason': reason,
  };
  if (r.status !== 0) attributes['http.response.status_code'] = r.status;
  if (delayMs !== undefined) attributes['connector.retry.delay_ms'] = Math.round(delayMs);
  t.span.addEvent('retry', attributes);
}

/** End the message's span with the delivery's outcome: dead letters as events, an error status unless delivered
 * (or unrouted). */
export function endDeliveryTrace(
  t: DeliveryTrace,
  outcome: DeliveryOutcome | undefined,
  err?: unknown,
): void {
  const { span } = t;
  if (outcome === undefined) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message ?? String(err) });
    span.setAttribute('error.type', (err as { code?: string })?.code ?? 'unknown');
    span.end();
    return;
  }
  span.setAttribute('connector.outcome', outcome.status);
  if (outcome.status === 'dead-lettered') {
    for (const r of outcome.results) {
      if (r.error === undefined) continue;
      const attributes: Attributes = {
        'faas.invoked_name': r.function,
        'error.type': r.error.code,
        'connector.attempt': r.attempt,
      };
      if (r.status !== 0) attributes['http.response.status_code'] = r.status;
      span.addEvent('dead_letter', attributes);
    }
  }
  if (outcome.status === 'failed' || outcome.status === 'dead-lettered') {
    const failed = outcome.results.find((r) => r.error !== undefined);
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: failed?.error?.message ?? (outcome.status === 'failed' ? 'not delivered' : outcome.status),
    });
    if (failed?.error !== undefined) span.setAttribute('error.type', failed.error.code);
  }
  span.end();
}

/** The client span of one invocation attempt (child of `parent`), per the HTTP client conventions. */
export function startAttemptSpan(parent: Context, url: URL, path: string, fn: string, attempt: number): Span {
  const attributes: Attributes = {
    'http.request.method': 'POST',
    'url.full': `${url.origin}${path}`,
    'server.address': url.hostname,
    'server.port': Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
    'faas.invoked_name': fn,
  };
  if (attempt > 1) attributes['http.request.resend_count'] = attempt - 1;
  return tracer().startSpan('POST', { kind: SpanKind.CLIENT, attributes }, parent);
}

/**
 * The propagator's headers (`traceparent`, `tracestate`, ...) for a request made under `span`: the message's own
 * copies are replaced, so the function continues the attempt's trace.
 */
export function injectTraceHeaders(parent: Context, span: Span, headers: Record<string, string>): void {
  for (const f of propagation.fields()) delete headers[f];
  propagation.inject(trace.setSpan(parent, span), headers);
}

/** End an attempt's client span with its result (an error status for a failed attempt, 4xx included). */
export function endAttemptSpan(span: Span, r: InvokeResult): void {
  if (r.status !== 0) span.setAttribute('http.response.status_code', r.status);
  if (r.error !== undefined) {
    span.setAttribute('error.type', r.status >= 400 ? String(r.status) : r.error.code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: r.error.message });
  }
  span.end();
}
