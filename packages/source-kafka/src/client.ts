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
  /** False once the consumer stops or the partition was revoked: process no further record. */
  active(): boolean;
  /** Pause fetching this partition; returns the resume function. */
  pause(): () => void;
  /** Consume again from `offset` (redelivery of a record that was not acked). */
  seek(offset: string): void;
  /** Mark records up to `offset` as processed and commit `offset + 1`. */
  commit(offset: string): Promise<void>;
  heartbeat(): Promise<void>;
}

/** The source's small view of a Kafka client, so kafkajs can be swapped (e.g. for @confluentinc/kafka-javascript). */
export interface KafkaClient {
  /** Connect, subscribe and run `onBatch` per fetched partition batch (partitions concurrently, records in order). */
  consume(
    topics: readonly string[],
    onBatch: (records: KafkaRecord[], control: BatchControl) => Promise<void>,
    onCrash: (err: Error) => void,
  ): Promise<void>;
  /** Stop consuming (commits nothing by itself) and leave the group. */
  stopConsuming(): Promise<void>;
  /** Produce one record. */
  produce(
    topic: string,
    record: { key: Buffer | string | null; value: Buffer | string; headers?: Record<string, string> },
  ): Promise<void>;
  /** Disconnect everything. */
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
  let consumer: Consumer | undefined;
  let producer: Producer | undefined;
  let producing: Promise<Producer> | undefined;

  const getProducer = () => {
    producing ??= (async () => {
      producer = kafka.producer({ allowAutoTopicCreation: true });
      await producer.connect();
      return producer;
    })();
    return producing;
  };

  return {
    async consume(topics, onBatch, onCrash) {
      const c = kafka.consumer({
        groupId: o.group ?? 'openfaas-kafka-connector',
        sessionTimeout: o.sessionTimeout ?? 30_000,
        heartbeatInterval: Math.max(500, Math.floor((o.sessionTimeout ?? 30_000) / 10)),
        allowAutoTopicCreation: true,
      });
      consumer = c;
      c.on(c.events.CRASH, (e) => {
        if (!(e.payload as { restart?: boolean }).restart) onCrash((e.payload as { error: Error }).error);
      });
      await c.connect();
      await c.subscribe({ topics: [...topics], fromBeginning: o.fromBeginning ?? true });
      await c.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: o.partitionConcurrency ?? 16,
        eachBatch: async (p) => {
          const { topic, partition } = p.batch;
          const records: KafkaRecord[] = p.batch.messages.map((m) => ({
            topic,
            partition,
            offset: m.offset,
            key: m.key,
            value: m.value,
            timestamp: m.timestamp,
            headers: textHeaders(m.headers),
          }));
          await onBatch(records, {
            active: () => p.isRunning() && !p.isStale(),
            pause: () => p.pause(),
            seek: (offset) => c.seek({ topic, partition, offset }),
            commit: async (offset) => {
              p.resolveOffset(offset);
              await c.commitOffsets([{ topic, partition, offset: (BigInt(offset) + 1n).toString() }]);
            },
            heartbeat: () => p.heartbeat(),
          });
        },
      });
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
      if (producing) await (await producing).disconnect();
      producing = undefined;
    },
  };
}
