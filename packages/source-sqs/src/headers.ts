import type { Message } from '@aws-sdk/client-sqs';

/** Message attributes that are W3C trace context (as OpenTelemetry's SQS instrumentation sends them): also handed
 * over under their own name, so core continues the message's trace and forwards it. */
const TRACE_CONTEXT = new Set(['traceparent', 'tracestate', 'baggage']);

/**
 * A message's SQS metadata as raw headers: `X-SQS-Message-Id`, and `X-SQS-<Name>` for every system attribute and
 * every message attribute (String and Number values as text, Binary values as their bytes); `traceparent`,
 * `tracestate` and `baggage` attributes also as themselves. Nothing is filtered or encoded here: core's header
 * policy decides what reaches the function and how.
 */
export function headersOf(m: Message): Record<string, string | Uint8Array> {
  const h: Record<string, string | Uint8Array> = {};
  if (m.MessageId !== undefined) h['X-SQS-Message-Id'] = m.MessageId;
  for (const [name, value] of Object.entries(m.Attributes ?? {}))
    if (value !== undefined) h[`X-SQS-${name}`] = value;
  for (const [name, value] of Object.entries(m.MessageAttributes ?? {})) {
    if (value.StringValue !== undefined) h[`X-SQS-${name}`] = value.StringValue;
    else if (value.BinaryValue !== undefined) h[`X-SQS-${name}`] = value.BinaryValue;
    if (value.StringValue !== undefined && TRACE_CONTEXT.has(name.toLowerCase())) h[name] = value.StringValue;
  }
  return h;
}
