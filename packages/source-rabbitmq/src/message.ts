import type { MessageHeaders, SourceMessage } from '@connector/core';
import type { ConsumeMessage } from 'amqplib';
import type { ResolvedQueue } from './options.js';

/** A header value as handed to core: strings and bytes raw; numbers, booleans, dates and tables as text. */
export function headerValue(v: unknown): string | Uint8Array | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v instanceof Date) return v.toISOString();
  return JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === 'bigint') return x.toString();
    if (x !== null && typeof x === 'object' && (x as { type?: unknown }).type === 'Buffer')
      return Buffer.from((x as { data: number[] }).data).toString('base64');
    return x;
  });
}

/** Times the message was dead-lettered, summed over its `x-death` entries (0 when it never was). */
export function deathCount(headers: Readonly<Record<string, unknown>> | undefined): number {
  const deaths = headers?.['x-death'];
  if (!Array.isArray(deaths)) return 0;
  let n = 0;
  for (const d of deaths) {
    const c = (d as { count?: unknown } | null)?.count;
    if (typeof c === 'number' && Number.isFinite(c)) n += c;
    else if (typeof c === 'bigint') n += Number(c);
  }
  return n;
}

/**
 * The message as the connector sees it: routed on its routing key (or, for a queue consumed as it is, on the queue
 * name); the AMQP headers raw (core's header policy decides what reaches the function) plus
 * `X-Rabbitmq-Routing-Key`, `X-Rabbitmq-Exchange`, `X-Rabbitmq-Redelivered` and `X-Rabbitmq-Death-Count`; the
 * content-type property as `contentType`; the message-id property as `id`.
 */
export function toSourceMessage(msg: ConsumeMessage, queue: ResolvedQueue): SourceMessage {
  const headers: Record<string, string | Uint8Array> = {};
  const amqpHeaders = msg.properties.headers as Record<string, unknown> | undefined;
  if (amqpHeaders)
    for (const [name, v] of Object.entries(amqpHeaders)) {
      const value = headerValue(v);
      if (value !== undefined) headers[name] = value;
    }
  headers['X-Rabbitmq-Routing-Key'] = msg.fields.routingKey;
  headers['X-Rabbitmq-Exchange'] = msg.fields.exchange;
  headers['X-Rabbitmq-Redelivered'] = String(msg.fields.redelivered);
  headers['X-Rabbitmq-Death-Count'] = String(deathCount(amqpHeaders));
  const out: { -readonly [K in keyof SourceMessage]: SourceMessage[K] } = {
    topic: queue.bound ? msg.fields.routingKey : queue.name,
    body: msg.content,
    headers: headers as MessageHeaders,
  };
  const ct = msg.properties.contentType as unknown;
  if (typeof ct === 'string' && ct !== '') out.contentType = ct;
  const id = msg.properties.messageId as unknown;
  if (typeof id === 'string' && id !== '') out.id = id;
  const at = msg.properties.timestamp as unknown; // AMQP timestamp: seconds, set by the publisher (often absent)
  if (typeof at === 'number' && at > 0) out.timestamp = at * 1000;
  return out;
}
