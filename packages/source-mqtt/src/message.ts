import { randomBytes } from 'node:crypto';
import type { SourceMessage } from '@connector/core';
import type { IPublishPacket } from 'mqtt';

/** Message ids: a random prefix per process and a counter. MQTT packet ids are reused as soon as a packet is
 * acknowledged, so they cannot name a message in a dead letter or a CloudEvent (`ce-id` must be unique). */
const ID_PREFIX = randomBytes(6).toString('base64url');
let idSeq = 0;

/** Headers of a message without user properties: no inherited names (`constructor`, ...), fast properties. */
const PlainHeaders = function PlainHeaders() {} as unknown as new () => Record<string, string>;
PlainHeaders.prototype = Object.create(null);

/** `X-MQTT-Qos` values. */
const QOS = ['0', '1', '2'];

/** Prefix of the headers this source adds to describe a message; user properties cannot set them. */
const OWN_PREFIX = 'x-mqtt-';

/**
 * The raw headers of a publish packet: MQTT 5 user properties (repeated names joined with `, `), then `X-MQTT-Topic`,
 * `-Qos`, `-Retain`, `-Dup` (when set), `-Response-Topic` and `-Correlation-Data` (base64). Values are handed over
 * as they are: core's header policy decides what reaches the function and encodes what HTTP cannot carry.
 */
export function headersOf(packet: IPublishPacket): Record<string, string> {
  const props = packet.properties;
  const user = props?.userProperties;
  // No prototype: a user property named `__proto__` is a header like any other. Without user properties only the
  // names below are set: an object with no inherited names either, but in V8's fast mode, which the header policy
  // reads several times faster than a prototype-less (dictionary) object.
  const headers: Record<string, string> = user ? Object.create(null) : new PlainHeaders();
  if (user) {
    for (const name of Object.keys(user)) {
      if (name.toLowerCase().startsWith(OWN_PREFIX)) continue; // a publisher cannot pass for the broker
      const raw = user[name];
      headers[name] = Array.isArray(raw) ? raw.join(', ') : String(raw);
    }
  }
  headers['X-MQTT-Topic'] = packet.topic;
  headers['X-MQTT-Qos'] = QOS[packet.qos] ?? String(packet.qos);
  if (packet.messageId !== undefined && packet.qos > 0)
    headers['X-MQTT-Packet-Id'] = String(packet.messageId);
  headers['X-MQTT-Retain'] = packet.retain ? 'true' : 'false';
  if (packet.dup) headers['X-MQTT-Dup'] = 'true';
  if (props?.responseTopic !== undefined) headers['X-MQTT-Response-Topic'] = props.responseTopic;
  if (props?.correlationData !== undefined)
    headers['X-MQTT-Correlation-Data'] = Buffer.from(props.correlationData).toString('base64');
  return headers;
}

/**
 * The message handed to the connector for a publish packet (`trimChannelKey`: route without the first level;
 * `ordered`: messages of one topic are delivered one after another, `orderingKey` = the topic).
 */
export function toSourceMessage(
  packet: IPublishPacket,
  trimChannelKey: boolean,
  ordered = true,
): SourceMessage {
  let topic = packet.topic;
  if (trimChannelKey) {
    const slash = topic.indexOf('/');
    if (slash >= 0) topic = topic.slice(slash + 1);
  }
  const body = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
  const msg: { -readonly [K in keyof SourceMessage]: SourceMessage[K] } = {
    topic,
    body,
    headers: headersOf(packet),
  };
  if (ordered) msg.orderingKey = topic;
  msg.id = `${ID_PREFIX}.${++idSeq}`;
  const ct = packet.properties?.contentType;
  if (ct !== undefined && ct !== '') msg.contentType = ct;
  return msg;
}
