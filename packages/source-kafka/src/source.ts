import {
  type DeadLetterHandler,
  type DeliveryOutcome,
  defineSource,
  isShutdownError,
  type Source,
  type SourceContext,
  SourceError,
  type SourceHealth,
  type SourceMessage,
} from '@connector/core';
import { type BatchControl, type KafkaClient, type KafkaRecord, kafkajsClient } from './client.js';
import { checkKafkaOptions, type KafkaSourceOptions } from './options.js';

/** The Kafka source: consumes a group, commits after delivery; `deadLetter` produces to `deadLetterTopic`. */
export interface KafkaSource extends Source {
  /** A dead-letter handler for `createConnector({ onFailure: 'dead-letter', deadLetter })` (with `deadLetterTopic`). */
  readonly deadLetter: DeadLetterHandler | undefined;
  /** Topics currently consumed. */
  subscribed(): readonly string[];
  /** Counters. */
  stats(): Readonly<Record<KafkaSourceStat, number>>;
}

/** Counters of `KafkaSource.stats()`. */
export type KafkaSourceStat =
  | 'delivered'
  | 'committed'
  | 'redelivered'
  | 'paused'
  | 'abandoned'
  | 'deadLettered'
  | 'replies'
  | 'resubscribed';

const SHUTDOWN = Symbol('shutdown');
const ABANDONED = Symbol('abandoned');

/**
 * Wait for a delivery to settle. Once `stop` aborts (partition revoked or handed over) it gets `grace` ms more, then
 * it is abandoned: it keeps running in the engine, but its record is not committed.
 */
function settle(
  delivery: Promise<DeliveryOutcome>,
  stop: AbortSignal,
  grace: number,
): Promise<DeliveryOutcome | typeof SHUTDOWN | typeof ABANDONED> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onStop = () => {
      timer = setTimeout(() => resolve(ABANDONED), grace);
    };
    stop.addEventListener('abort', onStop, { once: true });
    if (stop.aborted) onStop();
    delivery
      .then(resolve, (err: unknown) => (isShutdownError(err) ? resolve(SHUTDOWN) : reject(err)))
      .finally(() => {
        stop.removeEventListener('abort', onStop);
        clearTimeout(timer);
      });
  });
}

/** Sleep `ms`, or less if `signal` aborts. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const RESERVED = new Set([
  'x-topic',
  'x-connector',
  'x-callback-url',
  'content-length',
  'host',
  'connection',
  'transfer-encoding',
]);

/** A key as a header value: text when printable, base64 otherwise. */
function keyText(key: Buffer): string {
  const s = key.toString('utf8');
  return /^[\x20-\x7e]*$/.test(s) ? s : key.toString('base64');
}

/** Raw Kafka keys of the messages `toMessage` built (the message's `key` is text, base64 when not printable). */
const rawKeys = new WeakMap<SourceMessage, Buffer>();

/** Kafka record -> SourceMessage with the OpenFaaS Pro connector headers. */
export function toMessage(r: KafkaRecord): SourceMessage {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) {
    if (HEADER_NAME.test(k) && !RESERVED.has(k.toLowerCase()) && !/[\r\n]/.test(v)) headers[k] = v;
  }
  headers['X-Kafka-Topic'] = r.topic;
  headers['X-Kafka-Partition'] = String(r.partition);
  headers['X-Kafka-Offset'] = r.offset;
  headers['X-Kafka-Timestamp'] = r.timestamp;
  if (r.key) headers['X-Kafka-Key'] = keyText(r.key);
  const m: SourceMessage = {
    topic: r.topic,
    body: r.value ?? new Uint8Array(0),
    headers,
    id: `${r.topic}/${r.partition}/${r.offset}`,
    ...(r.key ? { key: keyText(r.key) } : {}),
  };
  if (r.key) rawKeys.set(m, r.key);
  return m;
}

/**
 * A core `DeadLetterHandler` that produces each failed message to `topic`: its key, raw value and headers (the
 * `X-Kafka-*` ones included) plus `X-Dead-Letter-Reason`, `-Function`, `-Status`, `-Attempts`, `-Source`. It rejects
 * when the record could not be produced, so the message is not committed. `producer` may be a getter (a source's
 * client, which exists only while it runs).
 */
export function kafkaDeadLetterTopic(
  topic: string,
  producer: Pick<KafkaClient, 'produce'> | (() => Pick<KafkaClient, 'produce'> | undefined),
  options: { onProduced?: () => void } = {},
): DeadLetterHandler {
  return async (l) => {
    const p = typeof producer === 'function' ? producer() : producer;
    if (!p) throw new SourceError(`Kafka client not running: dead letter for ${topic} not produced`);
    await p.produce(topic, {
      key: rawKeys.get(l.message) ?? l.message.key ?? null,
      value: Buffer.from(l.message.body),
      headers: {
        ...l.message.headers,
        'X-Dead-Letter-Reason': l.reason.replace(/[\r\n]+/g, ' '),
        'X-Dead-Letter-Function': l.function,
        'X-Dead-Letter-Status': String(l.result.status),
        'X-Dead-Letter-Attempts': String(l.result.attempt),
        'X-Dead-Letter-Source': l.source,
      },
    });
    options.onProduced?.();
  };
}

/**
 * Consume Kafka topics in a consumer group and commit a partition's offset only after every earlier record of that
 * partition settled (at-least-once); records of a partition are delivered in order, partitions concurrently.
 */
export const kafkaSource = defineSource(
  (options: KafkaSourceOptions & { client?: KafkaClient }): KafkaSource => {
    checkKafkaOptions(options);
    const stats: Record<KafkaSourceStat, number> = {
      delivered: 0,
      committed: 0,
      redelivered: 0,
      paused: 0,
      abandoned: 0,
      deadLettered: 0,
      replies: 0,
      resubscribed: 0,
    };
    let client: KafkaClient | undefined;
    let ctxRef: SourceContext | undefined;
    let topics: readonly string[] = [];
    let consuming = false;
    let joined = false;
    let lastError: string | undefined;
    let chain: Promise<void> = Promise.resolve();
    let offTopics: (() => void) | undefined;
    let handover = new AbortController();

    const reply = async (r: KafkaRecord, outcome: DeliveryOutcome) => {
      const res = outcome.results[0];
      if (!options.replyTopic || !client || outcome.status !== 'delivered' || !res) return;
      await client.produce(options.replyTopic, {
        key: r.key,
        value: Buffer.from(res.body),
        headers: {
          'X-Function': res.function,
          'X-Function-Status': String(res.status),
          'X-Kafka-Request-Offset': `${r.topic}/${r.partition}/${r.offset}`,
        },
      });
      stats.replies++;
    };

    const commitInterval = options.commitInterval ?? 1000;
    const revokeTimeout = options.revokeTimeout ?? 5000;

    const onBatch = async (records: KafkaRecord[], control: BatchControl) => {
      const ctx = ctxRef;
      if (!ctx) return;
      // The consumer of this batch is being replaced (subscription change): wrap up like on a revocation.
      const stopSignal = AbortSignal.any([control.revoked, handover.signal]);
      const halt = AbortSignal.any([stopSignal, ctx.signal]);
      const active = () => control.active() && !halt.aborted;
      // Contiguous settled watermark of this partition: `acked` is settled, `committed` is on the broker.
      let acked: string | undefined;
      let committed: string | undefined;
      let committing: Promise<void> = Promise.resolve();
      let sinceCommit = 0;
      const commit = (): Promise<void> => {
        committing = committing.then(async () => {
          const offset = acked;
          if (offset === undefined || offset === committed) return;
          try {
            await control.commit(offset);
            committed = offset;
            stats.committed++;
          } catch (err) {
            ctx.logger.warn(
              {
                err: (err as Error).message,
                topic: records[0]?.topic,
                partition: records[0]?.partition,
                offset,
              },
              'offset commit failed; records after the last commit will be redelivered',
            );
          }
        });
        return committing;
      };
      // Periodically, so a long batch (or a slow record) does not keep settled records uncommitted.
      const timer = setInterval(() => void commit(), Math.max(10, commitInterval));
      try {
        for (const r of records) {
          if (!active()) break;
          if (!ctx.hasCapacity()) {
            // Engine saturated: stop fetching this partition instead of buffering.
            void commit();
            const resume = control.pause();
            stats.paused++;
            await ctx.waitForCapacity(halt);
            resume();
            if (!active()) break;
          }
          const delivery = ctx.deliver(toMessage(r));
          const outcome = await settle(delivery, stopSignal, revokeTimeout);
          if (outcome === SHUTDOWN) break; // not settled: not committed, redelivered to the next owner
          if (outcome === ABANDONED) {
            stats.abandoned++;
            ctx.logger.info(
              { topic: r.topic, partition: r.partition, offset: r.offset },
              'partition handed over with a record in flight: not committed, the next owner redelivers it',
            );
            break;
          }
          if (!outcome.ack) {
            // Failed after the engine's retries, redeliver mode: do not commit past it; consume again from it.
            stats.redelivered++;
            await commit();
            await delay(1000, halt);
            if (active()) control.seek(r.offset);
            return;
          }
          try {
            await reply(r, outcome);
          } catch (err) {
            ctx.logger.error({ err: (err as Error).message }, 'reply not produced; record not committed');
            await commit();
            await delay(1000, halt);
            if (active()) control.seek(r.offset);
            return;
          }
          stats.delivered++;
          acked = r.offset;
          if (++sinceCommit >= 100) {
            sinceCommit = 0;
            void commit();
          }
        }
      } finally {
        clearInterval(timer);
        await commit();
      }
    };

    const run = async (ctx: SourceContext, next: readonly string[]) => {
      if (!client) return;
      if (consuming) {
        handover.abort(); // running batches settle or abandon their in-flight record, commit, return
        await client.stopConsuming();
        consuming = false;
        stats.resubscribed++;
      }
      topics = next;
      if (next.length === 0) {
        ctx.logger.warn('no topics: set topics, or annotate a function with topic=<kafka topic>');
        return;
      }
      handover = new AbortController();
      joined = false;
      await client.consume(
        next,
        onBatch,
        (err) => {
          lastError = err.message;
          ctx.fail(err);
        },
        (up, err) => {
          joined = up;
          if (up) lastError = undefined;
          else {
            lastError = err?.message ?? 'Kafka consumer restarting';
            ctx.logger.warn({ err: lastError }, 'Kafka consumer failed; the client restarts it');
          }
        },
      );
      consuming = true;
      lastError = undefined;
      ctx.logger.info(
        { topics: next, group: options.group ?? 'openfaas-kafka-connector' },
        'Kafka source consuming',
      );
    };

    const deadLetter: DeadLetterHandler | undefined = options.deadLetterTopic
      ? kafkaDeadLetterTopic(options.deadLetterTopic, () => client, {
          onProduced: () => {
            stats.deadLettered++;
          },
        })
      : undefined;

    return {
      name: 'kafka',
      deadLetter,
      async start(ctx) {
        ctxRef = ctx;
        client = options.client ?? kafkajsClient(options);
        if (options.topics === undefined) {
          offTopics = ctx.onTopicsChange((next) => {
            chain = chain.then(() => run(ctx, next)).catch((err: unknown) => ctx.fail(err));
          });
          chain = run(ctx, ctx.topics());
        } else chain = run(ctx, options.topics);
        await chain;
      },
      async stop() {
        offTopics?.();
        offTopics = undefined;
        await chain.catch(() => undefined);
        consuming = false;
        // The consumer finishes its batch first (its deliveries settle or are refused), commits, then leaves.
        await client?.close();
        client = undefined;
        ctxRef = undefined;
      },
      health(): SourceHealth {
        const detail = { topics, group: options.group ?? 'openfaas-kafka-connector', ...stats };
        const connected = client !== undefined && ((consuming && joined) || topics.length === 0);
        return lastError === undefined ? { connected, detail } : { connected, lastError, detail };
      },
      subscribed: () => topics,
      stats: () => ({ ...stats }),
    };
  },
);
