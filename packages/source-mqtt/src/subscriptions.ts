import { errorMessage, type Logger, mqttMatch } from '@connector/core';
import type { IPublishPacket, MqttClient } from 'mqtt';
import { reduceFilters } from './filters.js';
import { type MqttQos, topicFilterProblem } from './options.js';

/** How the source subscribes. */
export interface SubscriptionOptions {
  /** MQTT 5 (subscription identifiers, no-local, retain handling). */
  readonly v5: boolean;
  /** Subscription QoS. */
  readonly qos: MqttQos;
  /** `$share/<group>/` prefix, when set. */
  readonly sharedGroup: string | undefined;
}

interface Sub {
  /** MQTT 5 subscription identifier (undefined: none, e.g. a hash collision). */
  readonly id: number | undefined;
  /** SUBACK seen. */
  established: boolean;
}

/** A stable MQTT 5 subscription identifier (1 .. 268435455) for a filter: FNV-1a of its UTF-8 bytes. */
export function subscriptionId(filter: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(filter, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h % 268_435_455) + 1;
}

/**
 * The client's subscriptions, kept in line with a list of topic filters: covered filters are not subscribed, new
 * subscriptions are made before old ones are dropped, and a filter leaves the set only at UNSUBACK, so the
 * duplicate check never drops the only copy of a message.
 */
export class Subscriptions {
  /** Subscribed filters (without the `$share/<group>/` prefix). */
  private readonly subs = new Map<string, Sub>();
  /** MQTT 5 with subscription identifiers: used to drop the extra copies of overlapping subscriptions. */
  private useIds: boolean;
  /** Subscriptions with an identifier: a copy can only be a duplicate with two or more. */
  private identified = 0;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: MqttClient,
    private readonly options: SubscriptionOptions,
    private readonly log: Logger,
    /** Hears subscribe failures and refusals (for health). */
    private readonly onError: (err: unknown) => void,
    /** True once the source is stopping: no more changes. */
    private readonly stopping: () => boolean,
  ) {
    this.useIds = options.v5;
  }

  /** The filters the broker confirmed (SUBACK), as sent (with the `$share/<group>/` prefix when shared). */
  filters(): string[] {
    const out: string[] = [];
    for (const [t, s] of this.subs) if (s.established) out.push(this.filterFor(t));
    return out;
  }

  /** The broker said (CONNACK) whether it supports subscription identifiers. */
  identifiersAvailable(available: boolean | undefined): void {
    if (this.options.v5 && available === false) this.useIds = false;
  }

  /** Bring the subscriptions in line with `topics` (serialised; errors are logged and reported, never thrown). */
  sync(topics: readonly string[]): Promise<void> {
    this.chain = this.chain.then(() => this.apply(topics));
    return this.chain;
  }

  /**
   * MQTT 5 brokers may send one copy of a message per matching subscription (mosquitto does): true for every copy
   * but the one of the subscription with the lowest identifier among those acknowledged (SUBACK seen). A copy
   * carrying an identifier this run does not know (a subscription left in the persistent session by an earlier
   * configuration) is always delivered: at-least-once prefers a duplicate to a loss.
   */
  duplicate(packet: IPublishPacket): boolean {
    const raw = packet.properties?.subscriptionIdentifier;
    // One identified subscription (the common case): a copy is either of it or of an unknown one, never a duplicate.
    if (!this.useIds || raw === undefined || this.identified < 2) return false;
    const ids = Array.isArray(raw) ? raw : [raw];
    let lowest: number | undefined;
    const known = new Set<number>();
    for (const [filter, s] of this.subs) {
      if (s.id === undefined) continue;
      known.add(s.id);
      if (s.established && (lowest === undefined || s.id < lowest) && mqttMatch(filter, packet.topic))
        lowest = s.id;
    }
    if (lowest === undefined || ids.some((id) => !known.has(id))) return false;
    return !ids.includes(lowest);
  }

  private filterFor(topic: string): string {
    const g = this.options.sharedGroup;
    return g === undefined ? topic : `$share/${g}/${topic}`;
  }

  private subscribeOptions() {
    const { v5, qos, sharedGroup } = this.options;
    // no-local: responses the source publishes do not loop back (MQTT forbids it on shared subscriptions)
    return v5 ? { qos, nl: sharedGroup === undefined, rh: 1 as const } : { qos };
  }

  private async apply(topics: readonly string[]): Promise<void> {
    if (this.stopping()) return;
    const valid: string[] = [];
    for (const t of topics) {
      const problem = topicFilterProblem(t);
      if (problem)
        this.log.warn({ topic: t }, `not subscribing to an invalid topic filter: expected ${problem}`);
      else valid.push(t);
    }
    const want = new Set(reduceFilters(valid));
    const add = [...want].filter((t) => !this.subs.has(t));
    const remove = [...this.subs.keys()].filter((t) => !want.has(t));
    if (add.length > 0) await this.subscribe(add);
    if (remove.length > 0 && !this.stopping()) await this.unsubscribe(remove);
  }

  private async subscribe(add: string[]): Promise<void> {
    const withIds = this.useIds;
    // one SUBSCRIBE per filter with identifiers (an identifier belongs to a whole SUBSCRIBE), else one for all
    const batches = withIds ? add.map((t) => [t]) : [add];
    const used = new Set([...this.subs.values()].map((x) => x.id));
    await Promise.all(
      batches.map(async (batch) => {
        // the same filter gets the same identifier in every run, so redelivered messages keep matching it
        let id = withIds ? subscriptionId(this.filterFor(batch[0] as string)) : undefined;
        if (id !== undefined && used.has(id)) id = undefined; // hash collision: no identifier, no dedup
        used.add(id);
        for (const t of batch) this.subs.set(t, { id, established: false });
        this.recount();
        const map: Record<string, ReturnType<Subscriptions['subscribeOptions']>> = {};
        for (const t of batch) map[this.filterFor(t)] = this.subscribeOptions();
        try {
          const granted = await this.client.subscribeAsync(
            map,
            id === undefined ? {} : { properties: { subscriptionIdentifier: id } },
          );
          for (const t of batch) {
            const sub = this.subs.get(t);
            if (sub) sub.established = true;
          }
          const refused = granted.filter((g) => g.qos > 2).map((g) => g.topic);
          if (refused.length > 0) {
            this.onError(new Error(`subscription refused by the broker: ${refused.join(', ')}`));
            this.log.error({ filters: refused }, 'the broker refused these subscriptions (ACL?)');
          }
          this.warnLowered(granted);
        } catch (err) {
          for (const t of batch) this.subs.delete(t);
          this.recount();
          this.onError(err);
          this.log.warn(
            { filters: batch.map((t) => this.filterFor(t)) },
            `subscribe failed (${errorMessage(err)}); retrying on the next change`,
          );
          this.log.debug({ err }, 'subscribe failure (stack)');
        }
      }),
    );
    this.log.info({ filters: add.map((t) => this.filterFor(t)), qos: this.options.qos }, 'subscribed');
  }

  /**
   * A broker may grant a lower QoS than asked (mosquitto's `max_qos`, AWS IoT Core's QoS 1 at most): say so, since
   * QoS 0 messages are neither acknowledged nor redelivered, and QoS 1 ones may come twice.
   */
  private warnLowered(granted: readonly { topic: string; qos: number }[]): void {
    const asked = this.options.qos;
    const lowered = granted.filter((g) => g.qos < asked);
    if (lowered.length === 0) return;
    const atMostOnce = lowered.some((g) => g.qos === 0);
    this.log.warn(
      { granted: Object.fromEntries(lowered.map((g) => [g.topic, g.qos])), asked },
      `the broker granted a lower QoS than ${asked}: ${
        atMostOnce
          ? 'QoS 0 messages are neither acknowledged nor redelivered (at most once)'
          : 'QoS 1 messages may be delivered more than once'
      }`,
    );
  }

  private async unsubscribe(remove: string[]): Promise<void> {
    const filters = remove.map((t) => this.filterFor(t));
    try {
      await this.client.unsubscribeAsync(filters);
      this.log.info({ filters }, 'unsubscribed');
    } catch (err) {
      this.log.warn({ filters }, `unsubscribe failed: ${errorMessage(err)}`);
    }
    for (const t of remove) this.subs.delete(t);
    this.recount();
  }

  private recount(): void {
    let n = 0;
    for (const s of this.subs.values()) if (s.id !== undefined) n++;
    this.identified = n;
  }
}
