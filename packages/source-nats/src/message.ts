import type { SourceMessage } from '@connector/core';
import type { JsMsg } from '@nats-io/jetstream';
import type { Msg, MsgHdrs } from '@nats-io/transport-node';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Set the source's own header, replacing any case variant the publisher sent. */
function own(headers: Record<string, string>, name: string, value: string): void {
  const lower = name.toLowerCase();
  for (const k of Object.keys(headers)) if (k.toLowerCase() === lower) delete headers[k];
  headers[name] = value;
}

/** The message's NATS headers as they are (repeated names joined with `, `); core's header policy filters them. */
export function rawHeaders(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const [name, values] of h) out[name] = values.join(', ');
  return out;
}

/** The Content-Type a message's headers carry, if any (NATS header names are case-sensitive; any case is taken). */
function contentType(headers: Record<string, string>): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === 'content-type' && v !== '') return v;
  return undefined;
}

/** A core NATS message → SourceMessage: raw headers plus `X-Nats-Subject` (and `X-Nats-Reply` when it has one). */
export function coreMessage(m: Msg): SourceMessage {
  const headers = rawHeaders(m.headers);
  const ct = contentType(headers);
  own(headers, 'X-Nats-Subject', m.subject);
  if (m.reply) own(headers, 'X-Nats-Reply', m.reply);
  const msg: Mutable<SourceMessage> = { topic: m.subject, body: m.data, headers };
  if (ct !== undefined) msg.contentType = ct;
  return msg;
}

/**
 * A JetStream message → SourceMessage: raw headers plus `X-Nats-Subject`, `X-Nats-Stream`, `X-Nats-Sequence`
 * (stream sequence) and `X-Nats-Delivered` (delivery count); `id` is `<stream>:<sequence>`.
 */
export function jetStreamMessage(m: JsMsg): SourceMessage {
  const headers = rawHeaders(m.headers);
  const ct = contentType(headers);
  const info = m.info;
  own(headers, 'X-Nats-Subject', m.subject);
  own(headers, 'X-Nats-Stream', info.stream);
  own(headers, 'X-Nats-Sequence', String(info.streamSequence));
  own(headers, 'X-Nats-Delivered', String(info.deliveryCount));
  const msg: Mutable<SourceMessage> = {
    topic: m.subject,
    body: m.data,
    headers,
    id: `${info.stream}:${info.streamSequence}`,
    timestamp: Math.floor(info.timestampNanos / 1e6), // when the stream stored it
  };
  if (ct !== undefined) msg.contentType = ct;
  return msg;
}
