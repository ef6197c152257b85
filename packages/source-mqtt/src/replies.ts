import { type DeliveryOutcome, errorMessage, type Logger, mqttMatch } from '@connector/core';
import type { IClientPublishOptions, IPublishPacket, MqttClient } from 'mqtt';

/** Refused response topics remembered for the warn-once rule (beyond this, refusals are logged at debug only). */
const MAX_WARNED = 1000;

/**
 * MQTT 5 request/response, off unless `responseTopics` lists filters: a message's response topic is any topic its
 * publisher chose, so replying everywhere would let any publisher make the connector publish anywhere it may write.
 */
export class Replies {
  private readonly warned = new Set<string>();

  constructor(
    /** Filters a response topic must match (empty: replies off). */
    private readonly allowed: readonly string[],
  ) {}

  /** True when a reply may be published to `topic`. */
  allows(topic: string): boolean {
    if (topic === '' || topic.includes('+') || topic.includes('#')) return false; // a topic name, not a filter
    return this.allowed.some((f) => mqttMatch(f, topic));
  }

  /** Publish the first function's response to the message's response topic, when it has one and it is allowed. */
  send(client: MqttClient, packet: IPublishPacket, outcome: DeliveryOutcome, log: Logger): void {
    const responseTopic = packet.properties?.responseTopic;
    const result = outcome.results[0];
    if (responseTopic === undefined || !result) return;
    if (!this.allows(responseTopic)) {
      this.refused(responseTopic, log);
      return;
    }
    const properties: NonNullable<IClientPublishOptions['properties']> = {
      userProperties: { 'X-Function': result.function, 'X-Function-Status': String(result.status) },
    };
    if (packet.properties?.correlationData !== undefined)
      properties.correlationData = packet.properties.correlationData;
    const ct = result.headers['content-type'];
    if (ct !== undefined && ct !== '') properties.contentType = ct;
    client.publish(
      responseTopic,
      Buffer.from(result.body),
      { qos: packet.qos === 0 ? 0 : 1, properties },
      (err) => {
        if (err) log.warn({ responseTopic }, `could not publish the function response: ${errorMessage(err)}`);
      },
    );
  }

  private refused(topic: string, log: Logger): void {
    const why =
      this.allowed.length === 0
        ? 'replies are off (set responseTopics / env response_topics to allow topics)'
        : `it matches no filter of responseTopics (${this.allowed.join(', ')})`;
    const line = `not publishing the function response to the message's response topic: ${why}`;
    if (this.warned.has(topic) || this.warned.size >= MAX_WARNED) {
      log.debug({ responseTopic: topic }, line);
      return;
    }
    this.warned.add(topic);
    log.warn({ responseTopic: topic }, line);
  }
}
