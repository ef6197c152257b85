import {
  type Consumer,
  type EachBatchPayload,
  Kafka,
  logLevel,
  type Producer,
  type SASLOptions,
} from 'kafkajs';
import type { KafkaSourceOptions } from './options.js';

/** One consumed record, client-library neutral. */
export interface KafkaRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: string;
  headers: Record<string, string>;
}

/** What the source needs of a partition batch while processing it. */
export interface BatchControl {
  /** False once the consumer stops, the group rebalances or the partition was sought: process no further record. */
  active(): boolean;
  /** Aborted when the group starts rebalancing (this partition may be revoked): finish the batch quickly. */
  readonly revoked: AbortSignal;
  /** Pause fetching this partition; returns the resume function. */
  pause(): () => void;
  /** Consume again from `offset` (redelivery of a record that was not acked); ends the batch. */
  seek(offset: string): void;
  /** Commit `offset + 1`: every record of this partition up to `offset` settled. Works while the consumer stops. */
  commit(offset: string): Promise<void>;
}

/** The source's small view of a Kafka client, so kafkajs can be swapped (e.g. for @confluentinc/kafka-javascript). */
export interface KafkaClient {
  /**
   * Connect, join the group subscribed to `topics` and call `onBatch` per fetched partition batch (partitions
   * concurrently, one batch of a partition at a time, records in order); the client keeps the member alive
   * (heartbeats) while a batch is processed. Resolves once consuming has started. `onStatus` reports joining the
   * group (`up`) and errors the client recovers from by itself (`down`); `onCrash` one it gives up on.
   */
  consume(
    topics: readonly string[],
    onBatch: (records: KafkaRecord[], control: BatchControl) => Promise<void>,
    onCrash: (err: Error) => void,
    onStatus?: (up: boolean, err?: Error) => void,
  ): Promise<void>;
  /** Stop consuming: wait for the running batches to return (they commit), then leave the group. */
  stopConsuming(): Promise<void>;
  /** Produce one record. */
  produce(
    topic: string,
    record: { key: Buffer | string | null; value: Buffer | string; headers?: Record<string, string> },
  ): Promise<void>;
  /** Stop consuming and disconnect everything. */
  close(): Promise<void>;
}

const textHeaders = (h: EachBatchPayload['batch']['messages'][number]['headers']): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) {
    if (v === undefined) continue;
    const vals = Array.isArray(v) ? v : [v];
    out[k] = vals.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x))).join(', ');
  }
  return out;
};

/** kafkajs errors that mean this member must rejoin the group (its partitions may go elsewhere). */
const REJOIN = new Set([
  'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
  'NOT_COORDINATOR_FOR_GROUP',
]);
const mustRejoin = (err: unknown): boolean => REJOIN.has((err as { type?: string } | null)?.type ?? '');

/** The kafkajs implementation of KafkaClient. */
export function kafkajsClient(o: KafkaSourceOptions): KafkaClient {
  const kafka = new Kafka({
    clientId: o.clientId ?? 'openfaas-kafka-connector',
    brokers: [...o.brokers],
    logLevel: (o.logLevel ?? logLevel.NOTHING) as logLevel,
    ...(o.tls !== undefined ? { ssl: o.tls } : {}),
    ...(o.sasl ? { sasl: o.sasl as SASLOptions } : {}),
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 },
  });
  const sessionTimeout = o.sessionTimeout ?? 30_000;
  const heartbeatInterval = Math.max(500, Math.floor(sessionTimeout / 10));
  let consumer: Consumer | undefined;
  let producing: Promise<Producer> | undefined;

  const getProducer = () => {
    producing ??= (async () => {
      const p = kafka.producer({ allowAutoTopicCreation: true });
      try {
        await p.connect();
      } catch (err) {
        producing = undefined;
        throw err;
      }
      return p;
    })();
    return producing;
  };

  return {
    async consume(topics, onBatch, onCrash, onStatus) {
      const c = kafka.consumer({
        groupId: o.group ?? 'openfaas-kafka-connector',
        sessionTimeout,
        heartbeatInterval,
        maxWaitTimeInMs: o.fetchMaxWait ?? 500,
        allowAutoTopicCreation: true,
      });
      consumer = c;
      // One signal per generation: aborted when a heartbeat says the group rebalances, renewed on (re)join.
      let generation = new AbortController();
      let rejoinError: unknown;
      c.on(c.events.GROUP_JOIN, () => {
        if (generation.signal.aborted) generation = new AbortController();
        onStatus?.(true);
      });
      c.on(c.events.CRASH, (e) => {
        const { error, restart } = e.payload as { error: Error; restart?: boolean };
        // kafkajs restarts the consumer itself after retriable errors (broker gone, ...): only report those.
        if (restart) onStatus?.(false, error);
        else onCrash(error);
      });
      await c.connect();
      try {
        await c.subscribe({ topics: [...topics], fromBeginning: o.fromBeginning ?? true });
        await c.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: o.partitionConcurrency ?? 16,
          eachBatch: async (p) => {
            const { topic, partition } = p.batch;
            const gen = generation;
            const beat = () =>
              p.heartbeat().catch((err: unknown) => {
                if (!mustRejoin(err) || gen.signal.aborted) return;
                rejoinError = err;
                gen.abort();
              });
            // kafkajs heartbeats only between batches and when asked: keep the member alive while deliveries run.
            const timer = setInterval(() => void beat(), Math.max(250, Math.floor(heartbeatInterval / 2)));
            const records: KafkaRecord[] = p.batch.messages.map((m) => ({
              topic,
              partition,
              offset: m.offset,
              key: m.key,
              value: m.value,
              timestamp: m.timestamp,
              headers: textHeaders(m.headers),
            }));
            try {
              await onBatch(records, {
                active: () => p.isRunning() && !p.isStale() && !gen.signal.aborted,
                revoked: gen.signal,
                pause: () => p.pause(),
                seek: (offset) => c.seek({ topic, partition, offset }),
                commit: async (offset) => {
                  p.resolveOffset(offset);
                  // Straight to the group's offset manager: consumer.commitOffsets() is a no-op once stopping.
                  await p.commitOffsetsIfNecessary({
                    topics: [
                      { topic, partitions: [{ partition, offset: (BigInt(offset) + 1n).toString() }] },
                    ],
                  });
                },
              });
              await beat();
            } finally {
              clearInterval(timer);
            }
            // The group is rebalancing: hand the error to kafkajs so it rejoins now rather than fetching on.
            if (gen.signal.aborted && p.isRunning()) throw rejoinError;
          },
        });
      } catch (err) {
        consumer = undefined;
        await c.disconnect().catch(() => undefined);
        throw err;
      }
    },
    async stopConsuming() {
      const c = consumer;
      consumer = undefined;
      await c?.disconnect();
    },
    async produce(topic, record) {
      const p = await getProducer();
      await p.send({
        topic,
        messages: [
          { key: record.key, value: record.value, ...(record.headers ? { headers: record.headers } : {}) },
        ],
      });
    },
    async close() {
      await this.stopConsuming();
      const p = producing;
      producing = undefined;
      if (p) await (await p.catch(() => undefined))?.disconnect();
    },
  };
}
