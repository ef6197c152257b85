import {
  type AckDecision,
  Backoff,
  type BrokerError,
  type DeadLetterHandler,
  type DeliveryOutcome,
  defineSource,
  errorMessage,
  HealthState,
  InFlight,
  type Source,
  type SourceContext,
  SourceError,
  type SourceHealth,
  type SourceMessage,
  settleDelivery,
  sleep,
} from '@connector/core';
import { type BatchControl, type KafkaClient, type KafkaRecord, kafkajsClient } from './client.js';
import { logBrokerError } from './errors.js';
import { PartitionOffsets } from './offsets.js';
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

const ABANDONED = Symbol('abandoned');

/** Back-off before consuming a record again that was not acked: random up to 1 s, doubling to 30 s while it fails. */
const REDELIVER_BACKOFF = { min: 1000, max: 30_000 } as const;

/** Reason of the batch's own abort: a constant, since `abort()` without one builds a DOMException (with a stack). */
const BATCH_DONE = Symbol('batch done');

/**
 * The deliveries of one batch, settled one at a time through core's `settleDelivery` (ack iff the outcome says so;
 * ShutdownError: `shutdown`; any other rejection: `nack`). Once `stop` aborts (partition revoked or handed over) the
 * delivery in flight gets `grace` ms more, then it is abandoned: it keeps running in the engine, but its record is
 * not committed. One listener and one timer per batch, not per record: an AbortController, a listener and an abort
 * per record cost ~35 µs of a record's ~95 (pnpm bench --profile --only e2e-kafka-3).
 */
class BatchSettler {
  private readonly done = new AbortController();
  /** The deliveries in flight (one with `ordering=key`, several with `none`). */
  private readonly current = new Set<(v: typeof ABANDONED) => void>();
  private expired = false;

  constructor(stop: AbortSignal, grace: number) {
    const onStop = () => {
      void sleep(grace, this.done.signal).then((elapsed) => {
        if (!elapsed) return;
        this.expired = true;
        for (const abandon of this.current) abandon(ABANDONED);
      });
    };
    if (stop.aborted) onStop();
    else stop.addEventListener('abort', onStop, { once: true, signal: this.done.signal });
  }

  /** Wait for `delivery` and decide; ABANDONED once the grace after `stop` has run out. */
  settle(
    delivery: Promise<DeliveryOutcome>,
    onError: (err: unknown) => void,
  ): Promise<AckDecision | typeof ABANDONED> {
    return new Promise((resolve) => {
      this.current.add(resolve);
      void settleDelivery(delivery, onError).then((decision) => {
        this.current.delete(resolve);
        resolve(decision);
      });
      if (this.expired) resolve(ABANDONED);
    });
  }

  /** The batch is over: remove the listener, end the grace timer. */
  close(): void {
    this.current.clear();
    this.done.abort(BATCH_DONE);
  }
}

/** A key as a message's text key (logs, ordering): as it is when printable ASCII, base64 otherwise. */
function keyText(key: Buffer): string {
  const s = key.toString('latin1');
  return /^[\x20-\x7e]*$/.test(s) ? s : key.toString('base64');
}

/** Raw Kafka keys of the messages `toMessage` built (the message's `key` is text, base64 when not printable). */
const rawKeys = new WeakMap<SourceMessage, Buffer>();

/**
 * Kafka record -> SourceMessage. The record's headers go over raw (names as they are, values as bytes: core's header
 * policy decides what reaches the function), plus `X-Kafka-Topic`, `-Partition`, `-Offset`, `-Timestamp` and
 * `X-Kafka-Key` (the key's raw bytes).
 */
export function toMessage(r: KafkaRecord): SourceMessage {
  const partition = String(r.partition);
  // One literal (the record's headers first: the X-Kafka-* ones win), not a copy grown key by key: this runs per record.
  const headers: Record<string, string | Uint8Array> = {
    ...r.headers,
    'X-Kafka-Topic': r.topic,
    'X-Kafka-Partition': partition,
    'X-Kafka-Offset': r.offset,
    'X-Kafka-Timestamp': r.timestamp,
  };
  if (r.key) headers['X-Kafka-Key'] = r.key;
  const at = Number(r.timestamp);
  const m: { -readonly [K in keyof SourceMessage]: SourceMessage[K] } = {
    topic: r.topic,
    body: r.value ?? EMPTY_BODY,
    headers,
    id: `${r.topic}/${partition}/${r.offset}`,
    partition,
    offset: r.offset,
  };
  if (at > 0) m.timestamp = at; // the record's CreateTime or LogAppendTime
  if (r.key) {
    m.key = keyText(r.key);
    rawKeys.set(m, r.key);
  }
  return m;
}

/** The body of a record without a value (never written to: a message body is read only). */
const EMPTY_BODY = new Uint8Array(0);

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
        'X-Dead-Letter-Reason': l.reason.replace(/[\r\n]+/g, ' '), // one line for whoever logs it
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
 * partition settled (at-least-once); records of a partition are delivered in order (`ordering: 'key'`, default) or
 * concurrently (`'none'`), partitions concurrently.
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
    const group = options.group ?? 'openfaas-kafka-connector';
    const health = new HealthState();
    const batches = new InFlight(); // running partition batches: each commits what settled before it returns
    /** Redelivery back-off per partition (`topic/partition`), reset once a record of it is acked. */
    const backoffs = new Map<string, Backoff>();
    let client: KafkaClient | undefined;
    let ctxRef: SourceContext | undefined;
    let topics: readonly string[] = [];
    let consuming = false;
    let chain: Promise<void> = Promise.resolve();
    let offTopics: (() => void) | undefined;
    let handover = new AbortController();

    /** Produce the first function's response to `replyTopic`; rejects (so the record is not committed) if it fails. */
    const reply = async (r: KafkaRecord, outcome: DeliveryOutcome) => {
      const res = outcome.results[0];
      if (!options.replyTopic || outcome.status !== 'delivered' || !res) return;
      if (!client)
        throw new SourceError(`Kafka client not running: reply to ${options.replyTopic} not produced`);
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
    const concurrent = options.ordering === 'none';

    const onBatch = async (records: KafkaRecord[], control: BatchControl) => {
      const ctx = ctxRef;
      const first = records[0];
      if (!ctx || !first) return;
      const where = { topic: first.topic, partition: first.partition };
      const partitionKey = `${first.topic}/${first.partition}`;
      // The consumer of this batch is being replaced (subscription change): wrap up like on a revocation.
      const stopSignal = AbortSignal.any([control.revoked, handover.signal]);
      const halt = AbortSignal.any([stopSignal, ctx.signal]);
      const active = () => control.active() && !halt.aborted;
      // What settled, and so what may be committed: the rule lives in offsets.ts.
      const offsets = new PartitionOffsets();
      let committed: string | undefined;
      let committing: Promise<void> = Promise.resolve();
      let sinceCommit = 0;
      const commit = (): Promise<void> => {
        committing = committing.then(async () => {
          const offset = offsets.committable();
          if (offset === undefined || offset === committed) return;
          try {
            await control.commit(offset);
            committed = offset;
            stats.committed++;
          } catch (err) {
            health.failed(err);
            logBrokerError(
              ctx.logger,
              'warn',
              err,
              'offset commit failed; records after the last commit will be redelivered',
              { ...where, offset },
            );
          }
        });
        return committing;
      };
      /**
       * A record was not acked (failed in redeliver mode, or its reply not produced): commit only what settled before
       * it, wait the partition's back-off, then consume again from it (with `ordering=none`, records after it that
       * succeeded are delivered again). A stop during the wait leaves it uncommitted for the next owner.
       */
      const redeliver = async (offset: string) => {
        await commit();
        stats.redelivered++; // counted once what settled before it is committed
        let backoff = backoffs.get(partitionKey);
        if (!backoff) backoffs.set(partitionKey, (backoff = new Backoff(REDELIVER_BACKOFF)));
        if ((await sleep(backoff.next(), halt)) && active()) control.seek(offset);
      };
      // Periodically, so a long batch (or a slow record) does not keep settled records uncommitted.
      const timer = setInterval(() => void commit(), Math.max(10, commitInterval));
      const settler = new BatchSettler(stopSignal, revokeTimeout);
      /** Deliver one record and settle it into `offsets`: `stop` when it is left uncommitted for the next owner. */
      const handle = async (r: KafkaRecord): Promise<'ok' | 'failed' | 'stop'> => {
        let outcome: DeliveryOutcome | undefined;
        const delivery = ctx.deliver(toMessage(r)).then((o) => {
          outcome = o;
          return o;
        });
        const decision = await settler.settle(delivery, (err) =>
          ctx.logger.error(
            { ...where, offset: r.offset, err: errorMessage(err) },
            'delivery failed unexpectedly; record not committed',
          ),
        );
        if (decision === 'shutdown') return 'stop'; // not settled: not committed, redelivered to the next owner
        if (decision === ABANDONED) {
          stats.abandoned++;
          ctx.logger.info(
            { ...where, offset: r.offset },
            'partition handed over with a record in flight: not committed, the next owner redelivers it',
          );
          return 'stop';
        }
        if (decision === 'nack' || !outcome) {
          // Failed after the engine's retries (redeliver mode): nothing from it on is committed.
          offsets.settle(r.offset, false);
          return 'failed';
        }
        try {
          await reply(r, outcome);
        } catch (err) {
          health.failed(err);
          logBrokerError(ctx.logger, 'error', err, 'reply not produced; record not committed', {
            ...where,
            offset: r.offset,
          });
          offsets.settle(r.offset, false);
          return 'failed';
        }
        stats.delivered++;
        offsets.settle(r.offset, true);
        backoffs.delete(partitionKey);
        if (++sinceCommit >= 100) {
          sinceCommit = 0;
          void commit();
        }
        return 'ok';
      };
      // ordering=none: the deliveries of this batch in flight; `over` once one failed or was left for the next owner.
      const running = new Set<Promise<void>>();
      let over = false;
      try {
        for (const r of records) {
          if (!active() || over) break;
          if (!ctx.hasCapacity()) {
            // Engine saturated: stop fetching this partition instead of buffering.
            void commit();
            const resume = control.pause();
            stats.paused++;
            await ctx.waitForCapacity(halt);
            resume();
            if (!active() || over) break;
          }
          offsets.start(r.offset);
          if (!concurrent) {
            if ((await handle(r)) !== 'ok') break;
            continue;
          }
          const p: Promise<void> = handle(r).then((result) => {
            running.delete(p);
            if (result !== 'ok') over = true;
          });
          running.add(p);
        }
        while (running.size > 0) await Promise.all(running);
        const failed = offsets.firstFailed();
        if (failed !== undefined) await redeliver(failed);
      } finally {
        clearInterval(timer);
        settler.close();
        await commit();
      }
    };

    /** Join the group on `list` (`topics` becomes it once consuming). */
    const consume = async (ctx: SourceContext, c: KafkaClient, list: readonly string[]) => {
      handover = new AbortController();
      health.down();
      await c
        .consume(
          list,
          (records, control) => batches.track(onBatch(records, control)),
          (err) => {
            health.down(err);
            ctx.fail(err);
          },
          (up, err) => {
            if (up) health.up();
            else {
              health.down(err ?? new SourceError('Kafka consumer restarting'));
              logBrokerError(ctx.logger, 'warn', err, 'Kafka consumer failed; the client restarts it', {
                group,
              });
            }
          },
        )
        .catch((err: unknown) => {
          health.down(err); // readiness says why (a refused login, an untrusted certificate, ...)
          throw err;
        });
      consuming = true;
      topics = list;
      ctx.logger.info({ topics: list, group }, 'Kafka source consuming');
    };

    const topicCheckInterval = options.topicCheckInterval ?? 30_000;
    /** Topics asked for that the cluster does not have (consumed once they exist), and the timer looking for them. */
    let missing: readonly string[] = [];
    let lookForMissing: NodeJS.Timeout | undefined;

    /**
     * Consume `next`. A broker that does not create topics refuses the whole subscription when one is missing (a
     * function annotated before its topic exists): then the others are consumed, and the missing ones are looked for
     * every `topicCheckInterval` and subscribed once they exist, instead of consuming nothing until all exist.
     */
    const run = async (ctx: SourceContext, next: readonly string[]) => {
      if (!client) return;
      clearInterval(lookForMissing);
      missing = [];
      if (consuming) {
        handover.abort(); // running batches settle or abandon their in-flight record, commit, return
        await client.stopConsuming();
        await batches.idle();
        consuming = false;
        stats.resubscribed++;
      }
      topics = next;
      if (next.length === 0) {
        health.up(); // nothing to consume is not a broker problem
        ctx.logger.warn('no topics: set topics, or annotate a function with topic=<kafka topic>');
        return;
      }
      const c = client;
      try {
        await consume(ctx, c, next);
        return;
      } catch (err) {
        if ((err as BrokerError).brokerCode !== 'UNKNOWN_TOPIC_OR_PARTITION') throw err;
        const have = new Set(await c.topics());
        missing = next.filter((t) => !have.has(t));
        if (missing.length === 0) throw err; // all there now (or something else): the connector retries the start
      }
      ctx.logger.warn(
        { topics: missing, retryInMs: topicCheckInterval },
        'Kafka topics not found (the broker does not create them): consuming the others, looking for these again',
      );
      lookForMissing = setInterval(() => {
        void c.topics().then(
          (have) => {
            if (!missing.some((t) => have.includes(t))) return;
            clearInterval(lookForMissing);
            chain = chain.then(() => run(ctx, next)).catch((e: unknown) => ctx.fail(e));
          },
          () => undefined, // the next look tells
        );
      }, topicCheckInterval);
      const present = next.filter((t) => !missing.includes(t));
      if (present.length > 0) await consume(ctx, c, present);
      else {
        topics = present;
        health.up(); // consuming nothing yet is not a broker problem
      }
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
        client = options.client ?? kafkajsClient(options, ctx.logger);
        if (options.sasl?.mechanism.toLowerCase() === 'plain' && !options.tls) {
          ctx.logger.warn(
            { mechanism: 'plain' },
            'SASL PLAIN without TLS: the password crosses the network in clear text (set tls)',
          );
        }
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
        clearInterval(lookForMissing);
        missing = [];
        consuming = false;
        // The consumer finishes its batches first (their deliveries settle or are refused), commits, then leaves.
        try {
          await client?.close();
        } finally {
          await batches.idle();
          client = undefined;
          ctxRef = undefined;
          health.down();
        }
      },
      health(): SourceHealth {
        return health.snapshot({
          topics,
          ...(missing.length > 0 ? { missingTopics: missing } : {}),
          group,
          ...stats,
        });
      },
      async backlog() {
        const c = client;
        if (!c) throw new SourceError('Kafka source not running');
        const lags = await c.lag(topics);
        return lags.map((l) => ({ queue: l.topic, partition: l.partition, value: l.lag }));
      },
      subscribed: () => topics,
      stats: () => ({ ...stats }),
    };
  },
);
