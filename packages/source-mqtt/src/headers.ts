import type { IPublishPacket } from 'mqtt';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Control characters other than tab: not allowed in an HTTP header value.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;
const NON_LATIN1 = /[^\t\u0020-\u00ff]/;

/** Header names a message may not set: hop-by-hop, framing, and the connector's own. */
const RESERVED = new Set([
  'host',
  'content-length',
  'content-type',
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'x-topic',
  'x-connector',
  'x-callback-url',
  'x-call-id',
]);

/** A header value as HTTP can carry it: UTF-8 bytes sent as they are (like Go's net/http); undefined when it
 * holds control characters. */
export function headerValue(value: string): string | undefined {
  if (CONTROL.test(value)) return undefined;
  return NON_LATIN1.test(value) ? Buffer.from(value, 'utf8').toString('latin1') : value;
}

/** True when `name` is a valid HTTP header name that a message may set. */
export function allowedHeaderName(name: string): boolean {
  return TOKEN.test(name) && !RESERVED.has(name.toLowerCase()) && !name.toLowerCase().startsWith('x-mqtt-');
}

/** Invocation headers for a publish packet: MQTT 5 user properties, then `X-MQTT-*` describing the message. */
export function headersFromPacket(packet: IPublishPacket): Record<string, string> {
  const headers: Record<string, string> = {};
  const props = packet.properties;
  const user = props?.userProperties;
  if (user) {
    for (const [name, raw] of Object.entries(user)) {
      if (!allowedHeaderName(name)) continue;
      const joined = Array.isArray(raw) ? raw.join(', ') : String(raw);
      const value = headerValue(joined);
      if (value !== undefined) headers[name] = value;
    }
  }
  const topic = headerValue(packet.topic);
  if (topic !== undefined) headers['X-MQTT-Topic'] = topic;
  headers['X-MQTT-Qos'] = String(packet.qos);
  headers['X-MQTT-Retain'] = packet.retain ? 'true' : 'false';
  if (packet.dup) headers['X-MQTT-Dup'] = 'true';
  if (props?.responseTopic !== undefined) {
    const rt = headerValue(props.responseTopic);
    if (rt !== undefined) headers['X-MQTT-Response-Topic'] = rt;
  }
  if (props?.correlationData !== undefined)
    headers['X-MQTT-Correlation-Data'] = Buffer.from(props.correlationData).toString('base64');
  return headers;
}

/** The MQTT 5 content type of a packet, when it can be sent as a Content-Type header. */
export function contentTypeOf(packet: IPublishPacket): string | undefined {
  const ct = packet.properties?.contentType;
  if (ct === undefined || ct === '') return undefined;
  return headerValue(ct);
}
