/**
 * CloudEvents over HTTP (`cloudevents=binary|structured`): the one place that maps a message to an event's
 * headers and body. The invoker calls it while building a request, after the header policy; with `off` it is never
 * created, so a message costs nothing extra.
 *
 * A message that already is a CloudEvent is forwarded as that event, not wrapped again:
 * - binary, by the protocol binding of its broker: Kafka `ce_` headers, AMQP `cloudEvents_` / `cloudEvents:`
 *   application properties, NATS `ce-` headers, MQTT 5 user properties named as the attributes themselves
 *   (`specversion`, `id`, ...); it counts as an event when `specversion`, `id`, `source` and `type` are all there;
 * - structured: a content type beginning with `application/cloudevents` (the body is the event; sent as it is).
 */
import { randomUUID } from 'node:crypto';
import {
  encodeCloudEventValue,
  isPlainHeaderValue,
  MAX_MESSAGE_HEADER_BYTES,
  type MessageHeaders,
} from './headers.js';
import type { InvokeOptions } from './types.js';

/** The values of the `cloudevents` setting. */
export const CLOUDEVENTS_MODES = ['binary', 'structured', 'off'] as const;

/** How invocations carry CloudEvents: `binary` (`ce-` headers), `structured` (a JSON envelope) or `off`. */
export type CloudEventsMode = (typeof CLOUDEVENTS_MODES)[number];

/** Options of `createCloudEvents`. */
export interface CloudEventsOptions {
  /** `binary`, `structured` or `off` (default). */
  mode?: CloudEventsMode | undefined;
  /** The `type` of events the connector makes (default `dev.connector.<source>.message`). */
  type?: string | undefined;
  /** The connector's name, the first segment of the event `source`. */
  connectorName: string;
}

/** Maps one invocation's message to a CloudEvent in the HTTP request. */
export interface CloudEvents {
  /** The content mode of the requests it builds. */
  readonly mode: 'binary' | 'structured';
  /**
   * Make the request carry the message as a CloudEvent: rewrites `headers` (the request's, already under the header
   * policy, `content-type` being the data's) and returns the body to send.
   */
  encode(
    headers: Record<string, string>,
    body: Uint8Array,
    topic: string,
    options: InvokeOptions | undefined,
  ): Uint8Array;
}

/** Content type of a structured-mode request (the one the CloudEvents SDKs send and parse). */
export const CLOUDEVENTS_JSON = 'application/cloudevents+json; charset=utf-8';

/** The attributes every event has (`specversion`, `id`, `source`, `type`). */
const REQUIRED = ['specversion', 'id', 'source', 'type'] as const;

/** Attribute-name prefixes of the protocol bindings, lower-cased: Kafka, NATS/HTTP, AMQP (both separators). */
const PREFIXES = ['ce_', 'ce-', 'cloudevents_', 'cloudevents:'] as const;

/** A CloudEvents attribute name: lower-case letters and digits (spec 1.0, "Attribute Naming Convention"). */
const ATTRIBUTE_NAME = /^[a-z0-9]+$/;

type Attributes = Record<string, string>;

const decoder = new TextDecoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const utf8 = new TextEncoder();

/** A header value as text (Kafka headers are bytes: UTF-8 per the Kafka binding). */
function text(v: string | Uint8Array): string {
  return typeof v === 'string' ? v : decoder.decode(v);
}

/** True for a JSON media type: `application/json`, `text/json` or any `+json` suffix. */
function isJsonType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const semi = contentType.indexOf(';');
  const media = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  return media === 'application/json' || media === 'text/json' || media.endsWith('+json');
}

/** The message's `content-type` header (Kafka carries the data's content type there), any case. */
function headerContentType(raw: MessageHeaders | undefined): string | undefined {
  if (raw === undefined) return undefined;
  for (const name in raw) {
    if (name.length === 12 && name.toLowerCase() === 'content-type') {
      const v = text(raw[name] as string | Uint8Array).trim();
      return v === '' || !isPlainHeaderValue(v) ? undefined : v;
    }
  }
  return undefined;
}

/** The event a message's headers carry in binary mode, and the header names it was read from; or undefined. */
function bindingEvent(raw: MessageHeaders): { attributes: Attributes; names: string[] } | undefined {
  // One pass: the attributes under each prefix, and the unprefixed ones (MQTT 5 user properties).
  const found: { attributes: Attributes; names: string[] }[] = [];
  const bare: { attributes: Attributes; names: string[] } = { attributes: {}, names: [] };
  for (const name in raw) {
    const lower = name.toLowerCase();
    let i = 0;
    for (; i < PREFIXES.length; i++) if (lower.startsWith(PREFIXES[i] as string)) break;
    let into: { attributes: Attributes; names: string[] };
    let attribute: string;
    if (i < PREFIXES.length) {
      attribute = lower.slice((PREFIXES[i] as string).length);
      into = found[i] ??= { attributes: {}, names: [] };
    } else {
      attribute = name; // MQTT 5: "attribute names MUST be used unchanged"
      into = bare;
    }
    if (!ATTRIBUTE_NAME.test(attribute) || attribute === 'data') continue;
    into.attributes[attribute] = text(raw[name] as string | Uint8Array);
    into.names.push(name);
  }
  for (const candidate of [...found, bare])
    if (candidate !== undefined && REQUIRED.every((a) => (candidate.attributes[a] ?? '') !== ''))
      return candidate;
  return undefined;
}

/** Create the CloudEvents mapping of a connector; undefined when the mode is `off` (nothing to do per message). */
export function createCloudEvents(o: CloudEventsOptions): CloudEvents | undefined {
  const mode = o.mode ?? 'off';
  if (mode === 'off') return undefined;
  const connector = encodeURIComponent(o.connectorName);
  /** Id and time of messages without their own, kept per message: every function and retry sees the same. */
  const assigned = new WeakMap<object, { id: string; at: number }>();

  /** The event the connector makes of a message. */
  const wrap = (topic: string, opts: InvokeOptions | undefined, contentType: string | undefined) => {
    const msg = opts?.message;
    const source = opts?.source ?? 'direct';
    let id = msg?.id;
    let time = msg?.timestamp;
    if (id === undefined || id === '' || time === undefined || !Number.isFinite(time)) {
      let a = msg === undefined ? undefined : assigned.get(msg);
      if (a === undefined) {
        a = { id: randomUUID(), at: Date.now() };
        if (msg !== undefined) assigned.set(msg, a);
      }
      if (id === undefined || id === '') id = a.id;
      if (time === undefined || !Number.isFinite(time)) time = a.at;
    }
    const attributes: Attributes = {
      specversion: '1.0',
      id,
      source: `/connector/${connector}/${encodeURIComponent(source)}/${encodeURIComponent(topic)}`,
      type: o.type ?? `dev.connector.${source}.message`,
      time: new Date(time).toISOString(),
    };
    if (topic !== '') attributes['subject'] = topic;
    if (contentType !== undefined) attributes['datacontenttype'] = contentType;
    return attributes;
  };

  /** Binary mode: every attribute as a `ce-` header (extensions within the message-header budget). */
  const binary = (headers: Record<string, string>, attributes: Attributes): void => {
    let bytes = 0;
    for (const name in attributes) {
      if (name === 'datacontenttype') continue;
      const value = encodeCloudEventValue(attributes[name] as string);
      bytes += name.length + value.length + 7;
      const required = (REQUIRED as readonly string[]).includes(name);
      if (!required && bytes > MAX_MESSAGE_HEADER_BYTES) continue;
      headers[`ce-${name}`] = value;
    }
    const ct = attributes['datacontenttype'];
    if (ct === undefined || !isPlainHeaderValue(ct)) delete headers['content-type'];
    else headers['content-type'] = ct;
  };

  /** Structured mode: the JSON format, `data` when the body is JSON of a JSON content type, else `data_base64`. */
  const structured = (
    headers: Record<string, string>,
    attributes: Attributes,
    body: Uint8Array,
  ): Uint8Array => {
    let json = '{';
    for (const name in attributes) json += `${JSON.stringify(name)}:${JSON.stringify(attributes[name])},`;
    if (body.length > 0) {
      let data: string | undefined;
      if (isJsonType(attributes['datacontenttype'])) {
        try {
          data = strictUtf8.decode(body);
          JSON.parse(data);
        } catch {
          data = undefined;
        }
      }
      json +=
        data === undefined
          ? `"data_base64":"${Buffer.from(body.buffer, body.byteOffset, body.length).toString('base64')}"`
          : `"data":${data}`;
    } else json = json.slice(0, -1);
    headers['content-type'] = CLOUDEVENTS_JSON;
    return utf8.encode(`${json}}`);
  };

  return {
    mode,
    encode(headers, body, topic, opts) {
      const raw = opts?.headers;
      // The data's content type: the message's, else its `content-type` header (Kafka), else the configured one.
      let own = opts?.contentType;
      if (own !== undefined && !isPlainHeaderValue(own)) own = undefined;
      own ??= headerContentType(raw);
      const contentType = own ?? headers['content-type'];
      // The binding's own attribute headers never pass as they are: the event is sent in this request's mode.
      if (raw !== undefined)
        for (const name in raw) {
          const lower = name.toLowerCase();
          if (PREFIXES.some((p) => lower.startsWith(p))) delete headers[lower];
        }
      // Structured already: the body is the event.
      if (contentType?.trimStart().toLowerCase().startsWith('application/cloudevents')) {
        headers['content-type'] = contentType;
        return body;
      }
      let attributes: Attributes;
      const event = raw === undefined ? undefined : bindingEvent(raw);
      if (event !== undefined) {
        attributes = event.attributes;
        for (const name of event.names) delete headers[name.toLowerCase()];
        // The event's own datacontenttype unless its message says otherwise; the configured one last.
        const ct = own ?? attributes['datacontenttype'] ?? headers['content-type'];
        if (ct !== undefined) attributes['datacontenttype'] = ct;
      } else attributes = wrap(topic, opts, contentType);
      if (mode === 'structured') return structured(headers, attributes, body);
      binary(headers, attributes);
      return body;
    },
  };
}
