import {
  type DeadLetterHandler,
  type DeliveryOutcome,
  defineSource,
  isShutdownError,
  type Source,
  type SourceContext,
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
  stats(): Readonly<
    Record<
      'delivered' | 'committed' | 'redelivered' | 'paused' | 'deadLettered' | 'replies' | 'resubscribed',
      number
    >
  >;
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
  return {
    topic: r.topic,
    body: r.value ?? new Uint8Array(0),
    headers,
    id: `${r.topic}/${r.partition}/${r.offset}`,
    ...(r.key ? { key: keyText(r.key) } : {}),
  };
}

/**
 * Consume Kafka topics in a consumer group and commit a partition's offset only after every earlier record of that
 * partition settled (at-least-once); records of a partition are delivered in order, partitions concurrently.
 */
export const kafkaSource = defineSource(
  (options: KafkaSourceOptions & { client?: KafkaClient }): KafkaSource => {
    checkKafkaOptions(options);
    const stats = {
      delivered: 0,
      committed: 0,
      redelivered: 0,
      paused: 0,
      deadLettered: 0,
      replies: 0,
      resubscribed: 0,
    };
    let client: KafkaClient | undefined;
    let ctxRef: SourceContext | undefined;
    let topics: readonly string[] = [];
    let consuming = false;
    let lastError: string | undefined;
    let chain: Promise<void> = Promise.resolve();
    let offTopics: (() => void) | undefined;

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

    const onBatch = async (records: KafkaRecord[], control: BatchControl) => {
      const ctx = ctxRef;
      if (!ctx) return;
      let acked: string | undefined;
      let uncommitted = 0;
      const commit = async () => {
        if (acked === undefined) return;
        const offset = acked;
        acked = undefined;
        uncommitted = 0;
        try {
          await control.commit(offset);
          stats.committed++;
        } catch (err) {
          ctx.logger.warn(
            { err: (err as Error).message },
            'offset commit failed; those records will be redelivered',
          );
        }
      };
      for (const r of records) {
        if (!control.active() || ctx.signal.aborted) break;
        if (!ctx.hasCapacity()) {
          // Engine saturated: stop fetching this partition instead of buffering.
          const resume = control.pause();
          stats.paused++;
          await ctx.waitForCapacity(ctx.signal);
          resume();
          if (!control.active() || ctx.signal.aborted) break;
        }
        let outcome: DeliveryOutcome;
        try {
          outcome = await ctx.deliver(toMessage(r));
        } catch (err) {
          if (isShutdownError(err)) break; // not settled: not committed, redelivered to the next consumer
          throw err;
        }
        if (!outcome.ack) {
          // Failed after the engine's retries, redeliver mode: do not commit past it; consume again from it.
          stats.redelivered++;
          await commit();
          await new Promise((res) => setTimeout(res, 1000));
          if (control.active()) control.seek(r.offset);
          return;
        }
        try {
          await reply(r, outcome);
        } catch (err) {
          ctx.logger.error({ err: (err as Error).message }, 'reply not produced; record not committed');
          break;
        }
        stats.delivered++;
        acked = r.offset;
        if (++uncommitted >= 100) await commit();
        await control.heartbeat().catch(() => undefined);
      }
      await commit();
    };

    const run = async (ctx: SourceContext, next: readonly string[]) => {
      if (!client) return;
      if (consuming) {
        await client.stopConsuming();
        consuming = false;
        stats.resubscribed++;
      }
      topics = next;
      if (next.length === 0) {
        ctx.logger.warn('no topics: set topics, or annotate a function with topic=<kafka topic>');
        return;
      }
      await client.consume(next, onBatch, (err) => {
        lastError = err.message;
        ctx.fail(err);
      });
      consuming = true;
      lastError = undefined;
      ctx.logger.info(
        { topics: next, group: options.group ?? 'openfaas-kafka-connector' },
        'Kafka source consuming',
      );
    };

    const deadLetter: DeadLetterHandler | undefined = options.deadLetterTopic
      ? async (l) => {
          if (!client) throw new Error('Kafka source not started: cannot produce the dead letter');
          await client.produce(options.deadLetterTopic as string, {
            key: l.message.key ?? null,
            value: Buffer.from(l.message.body),
            headers: {
              ...l.message.headers,
              'X-Dead-Letter-Reason': l.reason,
              'X-Dead-Letter-Function': l.function,
              'X-Dead-Letter-Status': String(l.result.status),
              'X-Dead-Letter-Attempts': String(l.result.attempt),
            },
          });
          stats.deadLettered++;
        }
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
        const connected = client !== undefined && (consuming || topics.length === 0);
        return lastError === undefined ? { connected, detail } : { connected, lastError, detail };
      },
      subscribed: () => topics,
      stats: () => ({ ...stats }),
    };
  },
);
