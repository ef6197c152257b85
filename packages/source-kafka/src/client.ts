import type { BrokerError, Logger } from '@connector/core';
import {
  type Admin,
  type Consumer,
  type EachBatchPayload,
  Kafka,
  type LogEntry,
  logLevel,
  type Producer,
  type SASLOptions,
} from 'kafkajs';
import { installCodecs } from './codecs.js';
import { kafkaError } from './errors.js';
import type { KafkaSourceOptions } from './options.js';
import { fixRequestQueueTimer } from './request-queue-timer.js';

/** One consumed record, client-library neutral. */
export interface KafkaRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: string;
  /** The record's headers, raw: names as they are, values as bytes (a repeated name's values joined with `, `). */
  headers: Record<string, Uint8Array>;
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
  /** Commit `offset + 1`: every record of this partition up to `offset` settled. Works while the consumer stops;
   * rejects with a `BrokerError`. */
  commit(offset: string): Promise<void>;
}

/** The source's small view of a Kafka client, so kafkajs can be swapped (e.g. for @confluentinc/kafka-javascript). */
export interface KafkaClient {
  /**
   * Connect, join the group subscribed to `topics` and call `onBatch` per fetched partition batch (partitions
   * concurrently, one batch of a partition at a time, records in order); the client keeps the member alive
   * (heartbeats) while a batch is processed. Resolves once consuming has started. `onStatus` reports joining the
   * group (`up`) and errors the client recovers from by itself (`down`); `onCrash` one it gives up on. Every error
   * it rejects with or reports is a core `BrokerError` (see `kafkaError`).
   */
  consume(
    topics: readonly string[],
    onBatch: (records: KafkaRecord[], control: BatchControl) => Promise<void>,
    onCrash: (err: BrokerError) => void,
    onStatus?: (up: boolean, err?: BrokerError) => void,
  ): Promise<void>;
  /** Stop consuming: wait for the running batches to return (they commit), then leave the group. */
  stopConsuming(): Promise<void>;
  /** Produce one record; rejects with a `BrokerError` when it was not stored. */
  produce(
    topic: string,
    record: {
      key: Buffer | string | null;
      value: Buffer | string;
      headers?: Readonly<Record<string, string | Uint8Array>>;
    },
  ): Promise<void>;
  /** Names of the topics the cluster has (from its metadata; creates none). Rejects with a `BrokerError`. */
  topics(): Promise<readonly string[]>;
  /** Consumer lag of the group per partition of `topics`: high watermark − committed offset (without a commit:
   * from the log start when consuming from the beginning, else 0). Rejects with a `BrokerError`. */
  lag(topics: readonly string[]): Promise<PartitionLag[]>;
  /** Stop consuming and disconnect everything. */
  close(): Promise<void>;
}

/** One partition's consumer lag. */
export interface PartitionLag {
  readonly topic: string;
  readonly partition: number;
  readonly lag: number;
}

const EMPTY = Buffer.alloc(0);
/** The headers of a record without any (shared, frozen: read only). */
const NO_HEADERS: Record<string, Uint8Array> = Object.freeze(Object.create(null));
const LIST_SEPARATOR = Buffer.from(', ');
const bytes = (v: Buffer | string | null | undefined): Buffer =>
  v == null ? EMPTY : typeof v === 'string' ? Buffer.from(v) : v;

/**
 * kafkajs's headers as they are: no decoding (a value is bytes, not necessarily UTF-8). A name given more than once
 * (kafkajs makes an array of its values) becomes one value, the values joined with `, ` as HTTP joins a repeated
 * field; a null value is empty. Core's header policy decides later which names reach a function and how.
 */
const rawHeaders = (
  h: EachBatchPayload['batch']['messages'][number]['headers'],
): Record<string, Uint8Array> => {
  if (!h) return NO_HEADERS;
  const names = Object.keys(h);
  if (names.length === 0) return NO_HEADERS; // most records: no object per record
  const out: Record<string, Uint8Array> = Object.create(null);
  for (const name of names) {
    const v = h[name] as Buffer | string | null | undefined | (Buffer | string | null)[];
    if (!Array.isArray(v)) out[name] = bytes(v);
    else out[name] = Buffer.concat(v.flatMap((x, i) => (i === 0 ? [bytes(x)] : [LIST_SEPARATOR, bytes(x)])));
  }
  return out;
};

/** Header values for kafkajs: it writes Buffers as bytes but `String()`s anything else, a plain Uint8Array too. */
const kafkajsHeaders = (
  h: Readonly<Record<string, string | Uint8Array>>,
): Record<string, Buffer | string> => {
  const out: Record<string, Buffer | string> = Object.create(null);
  for (const name of Object.keys(h)) {
    const v = h[name] as string | Uint8Array;
    out[name] =
      typeof v === 'string' || Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
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

/** kafkajs's errors for a refused SASL login (by class name or the broker's error name). */
const SASL_REFUSED = new Set([
  'KafkaJSSASLAuthenticationError',
  'SASL_AUTHENTICATION_FAILED',
  'UNSUPPORTED_SASL_MECHANISM',
  'ILLEGAL_SASL_STATE',
]);

/**
 * The `host:port` of a kafkajs connection error in `err` (or what it wraps) that is not one of `brokers`: an address
 * the bootstrap broker handed out (Metadata, FindCoordinator), the usual sign of a wrong `advertised.listeners`
 * (a container's own name, an internal address).
 */
function unreachableAdvertised(err: unknown, brokers: readonly string[]): string | undefined {
  let e = err as { name?: unknown; broker?: unknown; cause?: unknown } | null | undefined;
  for (let depth = 0; depth < 5 && e !== null && typeof e === 'object'; depth++, e = e.cause as typeof e) {
    const address = e.broker;
    if (e.name !== 'KafkaJSConnectionError' || typeof address !== 'string') continue;
    const known = brokers.some((b) => b.trim().toLowerCase() === address.toLowerCase());
    return known ? undefined : address;
  }
  return undefined;
}

const KAFKAJS_LEVELS = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
} as const;

/** kafkajs's log lines into `logger` (`component: 'kafkajs'`, kafkajs's namespace), at kafkajs's level. */
function kafkajsLogCreator(logger: Logger) {
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      // kafkajs adds its own `timestamp` and `logger: 'kafkajs'`: the connector's logger has both already.
      const {
        message,
        timestamp: _timestamp,
        logger: _logger,
        ...fields
      } = log as LogEntry['log'] & {
        timestamp?: unknown;
        logger?: unknown;
      };
      const at = KAFKAJS_LEVELS[level as keyof typeof KAFKAJS_LEVELS];
      if (at !== undefined) logger[at]({ component: 'kafkajs', namespace, ...fields }, message);
    };
}

/**
 * The kafkajs implementation of KafkaClient. kafkajs's own log lines (at `o.logLevel`) go to `logger` when given
 * (otherwise kafkajs prints them to the console). A refused SASL login is reported as one line naming the mechanism
 * and the user, never the password.
 */
export function kafkajsClient(o: KafkaSourceOptions, logger?: Logger): KafkaClient {
  installCodecs(); // Snappy, LZ4 and ZSTD batches (kafkajs reads GZIP only)
  fixRequestQueueTimer(); // no negative setTimeout (Node >= 23 warns on stderr)
  const kafka = new Kafka({
    clientId: o.clientId ?? 'openfaas-kafka-connector',
    brokers: [...o.brokers],
    logLevel: (o.logLevel ?? logLevel.NOTHING) as logLevel,
    ...(logger ? { logCreator: kafkajsLogCreator(logger) } : {}),
    ...(o.tls !== undefined ? { ssl: o.tls } : {}),
    ...(o.sasl ? { sasl: o.sasl as SASLOptions } : {}),
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 },
  });
  /**
   * `kafkaError`, with a refused SASL login said as such (which mechanism, which user, never the password), and a
   * connection error to an address that is not one of `brokers` said to come from the cluster's advertised listeners.
   */
  const clientError = (err: unknown, what: string): BrokerError => {
    const e = kafkaError(err, what);
    const advertised = unreachableAdvertised(err, o.brokers);
    if (advertised !== undefined)
      e.message +=
        ` (${advertised} is where the cluster says a broker is, not one of brokers=${o.brokers.join(',')}: ` +
        "check the brokers' advertised.listeners)";
    if (o.sasl === undefined || !SASL_REFUSED.has(e.brokerCode ?? '')) return e;
    const { mechanism, username } = o.sasl;
    return kafkaError(
      err,
      `SASL ${mechanism.toLowerCase()} authentication as ${JSON.stringify(username)} refused by Kafka`,
    );
  };
  const sessionTimeout = o.sessionTimeout ?? 30_000;
  const heartbeatInterval = Math.max(500, Math.floor(sessionTimeout / 10));
  let consumer: Consumer | undefined;
  let producing: Promise<Producer> | undefined;
  let administering: Promise<Admin> | undefined;
  let closed = false;
  const group = o.group ?? 'openfaas-kafka-connector';

  /** The admin client for lag queries: connected on first use, until `close`. */
  const getAdmin = () => {
    if (closed) return Promise.reject(new Error('Kafka client closed'));
    administering ??= (async () => {
      const a = kafka.admin();
      try {
        await a.connect();
      } catch (err) {
        administering = undefined;
        throw err;
      }
      return a;
    })();
    return administering;
  };

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
      closed = false;
      const c = kafka.consumer({
        groupId: group,
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
        const err = clientError(error, `Kafka consumer of ${topics.join(', ')}`);
        // kafkajs restarts the consumer itself after retriable errors (broker gone, ...): only report those.
        if (restart) onStatus?.(false, err);
        else onCrash(err);
      });
      try {
        await c.connect();
        await c.subscribe({ topics: [...topics], fromBeginning: o.fromBeginning ?? true });
        await c.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: o.partitionConcurrency ?? 16,
          eachBatch: async (p) => {
            const { topic, partition } = p.batch;
            const gen = generation;
            let sought = false;
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
              headers: rawHeaders(m.headers),
            }));
            try {
              await onBatch(records, {
                // Only `seek` below makes a batch stale (kafkajs marks a partition stale on a consumer.seek, and
                // nothing else here seeks): a flag instead of p.isStale(), which costs a JSON.stringify per record.
                active: () => p.isRunning() && !sought && !gen.signal.aborted,
                revoked: gen.signal,
                pause: () => p.pause(),
                seek: (offset) => {
                  sought = true;
                  c.seek({ topic, partition, offset });
                },
                commit: async (offset) => {
                  p.resolveOffset(offset);
                  // Straight to the group's offset manager: consumer.commitOffsets() is a no-op once stopping.
                  await p
                    .commitOffsetsIfNecessary({
                      topics: [
                        { topic, partitions: [{ partition, offset: (BigInt(offset) + 1n).toString() }] },
                      ],
                    })
                    .catch((err: unknown) => {
                      throw kafkaError(err, `commit ${topic}/${partition} at ${offset}`);
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
        throw clientError(err, `consume ${topics.join(', ')}`);
      }
    },
    async stopConsuming() {
      const c = consumer;
      consumer = undefined;
      await c?.disconnect().catch((err: unknown) => {
        throw kafkaError(err, 'leave the consumer group');
      });
    },
    async produce(topic, record) {
      try {
        const p = await getProducer();
        await p.send({
          topic,
          messages: [
            {
              key: record.key,
              value: record.value,
              ...(record.headers ? { headers: kafkajsHeaders(record.headers) } : {}),
            },
          ],
        });
      } catch (err) {
        throw clientError(err, `produce to ${topic}`);
      }
    },
    async topics() {
      try {
        return await (await getAdmin()).listTopics();
      } catch (err) {
        throw clientError(err, 'list the topics of the cluster');
      }
    },
    async lag(topics) {
      if (topics.length === 0) return [];
      try {
        const admin = await getAdmin();
        const committed = await admin.fetchOffsets({ groupId: group, topics: [...topics] });
        const out: PartitionLag[] = [];
        for (const t of committed) {
          const ends = await admin.fetchTopicOffsets(t.topic);
          for (const p of ends) {
            const high = BigInt(p.high);
            const low = BigInt(p.low);
            const c = BigInt(t.partitions.find((x) => x.partition === p.partition)?.offset ?? '-1');
            // No commit yet: the group starts at the log start (fromBeginning) or at the end.
            let from = c < 0n ? ((o.fromBeginning ?? true) ? low : high) : c;
            if (from < low) from = low; // committed offset deleted by retention: consuming resumes at the start
            out.push({ topic: t.topic, partition: p.partition, lag: Number(high > from ? high - from : 0n) });
          }
        }
        return out;
      } catch (err) {
        throw clientError(err, `consumer lag of group ${group}`);
      }
    },
    async close() {
      closed = true;
      await this.stopConsuming();
      const p = producing;
      producing = undefined;
      if (p) await (await p.catch(() => undefined))?.disconnect();
      const a = administering;
      administering = undefined;
      if (a) await (await a.catch(() => undefined))?.disconnect();
    },
  };
}
