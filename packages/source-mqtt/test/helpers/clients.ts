import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

/** A test publisher/subscriber client (MQTT 5 unless told otherwise). */
export async function client(url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 100, ...opts });
}

/** Publish `n` QoS 1 messages `prefix-0..n-1` to `topic` (each awaited until the broker's PUBACK). */
export async function publishMany(c: MqttClient, topic: string, n: number, prefix = 'm', qos: 0 | 1 | 2 = 1) {
  for (let i = 0; i < n; i++) await c.publishAsync(topic, `${prefix}-${i}`, { qos });
}

/** Bodies of the messages as utf8 strings. */
export const bodies = (ms: readonly { body: Uint8Array }[]) =>
  ms.map((m) => Buffer.from(m.body).toString('utf8'));
