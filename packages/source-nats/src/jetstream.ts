import {
  Backoff,
  type BrokerError,
  backoff,
  type DeliveryOutcome,
  type HealthState,
  type InFlight,
  type Logger,
  type SourceContext,
  settleDelivery,
  sleep,
  TurnBatch,
} from '@connector/core';
import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import { type NatsConnection, nanos } from '@nats-io/transport-node';
import { natsError } from './errors.js';
import { jetStreamMessage } from './message.js';
import type { ResolvedNatsOptions } from './options.js';
import { subjectCovers, subjectProblem } from './subjects.js';

/** Marks a stream the source created: only such a stream gets the functions' new topics added to its subjects. */
export const MANAGED_STREAM = 'created by @connector/source-nats; subjects follow the functions';

/** A running JetStream consumer loop. */
export interface JetStreamRun {
  /** Stop pulling; resolves when the pull loop ended (deliveries are awaited by the caller). */
  stop(): Promise<void>;
  /** Health details. */
  detail(): Record<string, unknown>;
  /** The consumer's `num_pending` (not delivered yet) and `num_ack_pending` (delivered, not acked) from the server;
   * undefined while the consumer is not bound yet (no stream). Rejects with a `BrokerError`. */
  backlog(): Promise<{ pending: number; ackPending: number } | undefined>;
}

/** Run each queued ack/nak/term call; each handles its own errors, one that throws anyway must not stop the rest
 * (its message is redelivered after ack_wait). */
function sendEach(replies: (() => void)[]): void {
  for (const reply of replies) {
    try {
      reply();
    } catch {
      // nothing sent: JetStream redelivers this one after ack_wait
    }
  }
}

/** Delay of the `nak` after the `deliveryCount`-th failed delivery: never below `min`, growing, capped at `max`. */
export function nakDelay(deliveryCount: number, min: number, max: number): number {
  return Math.min(max, min + backoff(deliveryCount, min, max));
}

/**
 * Bind (or create) the stream and the durable pull consumer, then pull messages while the engine has capacity:
 * ack after the delivery settled, `term` when dead-lettered, `nak` with back-off when failed, `nak(0)` when the
 * connector stopped first, `working()` while a delivery outlasts a third of `ack_wait`.
 */
export async function startJetStream(
  nc: NatsConnection,
  o: ResolvedNatsOptions,
  ctx: SourceContext,
  health: HealthState,
  inflight: InFlight,
): Promise<JetStreamRun> {
  const log = ctx.logger;
  const stream = o.stream as string;
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc);
  } catch (err) {
    throw natsError(err, 'JetStream');
  }
  let stopping = false;
  let current: ConsumerMessages | undefined;
  let loop: Promise<void> | undefined;
  let offTopics: (() => void) | undefined;
  let chain: Promise<void> = Promise.resolve();
  let streamSubjects: readonly string[] = [];
  // nats-server < 2.10 does not parse `+TERM <reason>`: it ignores it and redelivers after ack_wait.
  const termReason = serverAtLeast(nc.info?.version, 2, 10) ? 'dead-lettered by @connector' : undefined;

  const ensure = (wanted: readonly string[]): Promise<void> => {
    chain = chain.then(async () => {
      if (stopping) return;
      const subjects = wanted.filter((s) => {
        const problem = subjectProblem(s);
        if (problem) log.warn({ subject: s }, `not consuming an invalid subject: expected ${problem}`);
        return problem === undefined;
      });
      streamSubjects = await ensureStream(jsm, o, subjects, log);
      await ensureConsumer(jsm, o, log);
      loop ??= pull();
    });
    return chain;
  };

  const pull = async (): Promise<void> => {
    const js = jetstream(nc);
    let consumer: Consumer;
    try {
      consumer = await js.consumers.get(stream, o.consumer);
    } catch (err) {
      ctx.fail(natsError(err, `bind consumer ${o.consumer} on ${stream}`));
      return;
    }
    const retry = new Backoff({ min: 250, max: 10_000 });
    while (!stopping) {
      await ctx.waitForCapacity(ctx.signal);
      if (stopping || ctx.signal.aborted) break;
      try {
        const batch = await consumer.fetch({ max_messages: o.batch, expires: o.fetchExpires });
        current = batch;
        for await (const m of batch) handle(m);
        retry.reset();
      } catch (err) {
        if (stopping) break;
        const e = natsError(err, `fetch from ${stream}/${o.consumer}`);
        // Deleted consumer or stream? Ask the server rather than parse the error's text.
        const missing =
          notFound(err) ||
          (await jsm.consumers.info(stream, o.consumer).then(
            () => false,
            (e2: unknown) => notFound(e2),
          ));
        if (missing) {
          ctx.fail(e); // the consumer or stream was deleted: the connector restarts the source, which recreates it
          return;
        }
        health.failed(e);
        log.warn({ err: e.message }, 'pull failed; retrying');
        await sleep(retry.next(), ctx.signal);
      } finally {
        current = undefined;
      }
    }
  };

  // Acks, naks and terms of one event-loop turn leave together: nats.js writes its buffer a microtask after a command,
  // so one by one (one settle per HTTP response, each in its own I/O callback) every ack was a socket write of its own.
  const acks = new TurnBatch<() => void>(sendEach);

  const handle = (m: JsMsg): void => {
    // Progress acks keep the message ours while the delivery waits for a slot or the function runs.
    const working = setInterval(() => m.working(), Math.max(50, Math.floor(o.ackWait / 3)));
    working.unref();
    let outcome: DeliveryOutcome | undefined;
    const delivery = ctx.deliver(jetStreamMessage(m)).then((r) => {
      outcome = r;
      return r;
    });
    const settled = settleDelivery(delivery, (err) =>
      log.error({ err, subject: m.subject, seq: m.info.streamSequence }, 'delivery failed unexpectedly; nak'),
    ).then((decision) => {
      clearInterval(working);
      return acks.add(() => {
        try {
          if (decision === 'ack') {
            // A dead-lettered message is done with: term (not ack) so JetStream records it as terminated
            // ($JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED) and never redelivers it.
            if (outcome?.status === 'dead-lettered') m.term(termReason);
            else m.ack();
          } else if (decision === 'nack') {
            m.nak(nakDelay(m.info.deliveryCount, o.nakDelay.min, o.nakDelay.max));
          } else {
            m.nak(); // the connector stopped before the delivery settled: hand it back at once
          }
        } catch (err) {
          // Closed connection: nothing sent, JetStream redelivers after ack_wait.
          health.failed(natsError(err, `${decision} ${stream}:${m.info.streamSequence}`));
        }
      });
    });
    void inflight.track(settled);
  };

  if (o.subjects !== undefined) await ensure(o.subjects);
  else {
    offTopics = ctx.onTopicsChange((topics) => {
      if (topics.length > 0)
        ensure(topics).catch((err: unknown) => ctx.fail(natsError(err, `stream ${stream}`)));
    });
    const topics = ctx.topics();
    if (topics.length > 0) await ensure(topics);
    else {
      // Bind now when the stream exists; otherwise it is created with the first topics the functions name.
      const exists = await jsm.streams.info(stream).then(
        () => true,
        (err: unknown) => (notFound(err) ? false : Promise.reject(natsError(err, `stream ${stream}`))),
      );
      if (exists) await ensure([]);
      else
        log.warn(
          { stream },
          'no function has a topic annotation yet: the stream is created with the first ones',
        );
    }
  }

  return {
    async stop() {
      stopping = true;
      offTopics?.();
      current?.stop();
      await chain.catch(() => undefined);
      await loop;
    },
    detail: () => ({ stream, consumer: o.consumer, streamSubjects, pending: inflight.size }),
    async backlog() {
      if (loop === undefined) return undefined;
      try {
        const ci = await jsm.consumers.info(stream, o.consumer);
        return { pending: ci.num_pending, ackPending: ci.num_ack_pending };
      } catch (err) {
        throw natsError(err, `consumer info ${stream}/${o.consumer}`);
      }
    },
  };
}

/** True when the server's `major.minor.patch` version is at least `major.minor`. */
export function serverAtLeast(version: string | undefined, major: number, minor: number): boolean {
  const m = /^v?(\d+)\.(\d+)/.exec(version ?? '');
  if (!m) return false;
  const [ma, mi] = [Number(m[1]), Number(m[2])];
  return ma > major || (ma === major && mi >= minor);
}

/** True for "stream/consumer not found" API errors. */
function notFound(err: unknown): boolean {
  const name = (err as { name?: unknown }).name;
  const code = (err as { code?: unknown }).code;
  return (
    name === 'StreamNotFoundError' || name === 'ConsumerNotFoundError' || code === 10059 || code === 10014
  );
}

/** Bind the stream; create it when missing (and allowed), or add subjects to a stream the source manages. */
async function ensureStream(
  jsm: JetStreamManager,
  o: ResolvedNatsOptions,
  subjects: readonly string[],
  log: Logger,
): Promise<readonly string[]> {
  const name = o.stream as string;
  let info: Awaited<ReturnType<JetStreamManager['streams']['info']>>;
  try {
    info = await jsm.streams.info(name);
  } catch (err) {
    if (!notFound(err)) throw natsError(err, `stream ${name}`);
    if (!o.createStream)
      throw natsError(
        err,
        `stream ${name} does not exist (create it, or set create_stream=true)`,
      ) as BrokerError;
    if (subjects.length === 0) throw natsError(err, `stream ${name} does not exist and no subject is known`);
    try {
      const created = await jsm.streams.add({ name, subjects: [...subjects], description: MANAGED_STREAM });
      log.info({ stream: name, subjects }, 'created the stream');
      return created.config.subjects ?? [];
    } catch (e) {
      throw natsError(e, `create stream ${name}`);
    }
  }
  const have = info.config.subjects ?? [];
  const missing = subjects.filter((s) => !have.some((h) => subjectCovers(h, s)));
  if (missing.length === 0) return have;
  if (info.config.description !== MANAGED_STREAM) {
    log.warn(
      { stream: name, subjects: missing, streamSubjects: have },
      'these subjects are not in the stream (it was not created by the connector): their messages are not consumed',
    );
    return have;
  }
  try {
    const updated = await jsm.streams.update(name, { ...info.config, subjects: [...have, ...missing] });
    log.info({ stream: name, added: missing }, 'added subjects to the stream');
    return updated.config.subjects ?? [];
  } catch (err) {
    const e = natsError(err, `add subjects ${missing.join(', ')} to stream ${name}`);
    log.warn({ err: e.message }, 'could not add subjects to the stream');
    return have;
  }
}

/** Create the durable pull consumer, or bring an existing one's ack_wait / max_ack_pending / max_deliver in line. */
async function ensureConsumer(jsm: JetStreamManager, o: ResolvedNatsOptions, log: Logger): Promise<void> {
  const stream = o.stream as string;
  const filter = o.subjects?.length === 1 ? o.subjects[0] : undefined;
  const want = {
    ack_wait: nanos(o.ackWait),
    max_ack_pending: o.maxAckPending,
    max_deliver: o.maxDeliver,
  };
  let existing: Awaited<ReturnType<JetStreamManager['consumers']['info']>> | undefined;
  try {
    existing = await jsm.consumers.info(stream, o.consumer);
  } catch (err) {
    if (!notFound(err)) throw natsError(err, `consumer ${o.consumer} on ${stream}`);
  }
  if (existing === undefined) {
    const cfg: Partial<ConsumerConfig> = {
      durable_name: o.consumer,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: o.deliverPolicy,
      ...want,
    };
    if (filter !== undefined) cfg.filter_subject = filter;
    try {
      await jsm.consumers.add(stream, cfg);
    } catch (err) {
      throw natsError(err, `create consumer ${o.consumer} on ${stream}`);
    }
    log.info(
      { stream, consumer: o.consumer, filter, ...want, ack_wait: o.ackWait },
      'created the durable consumer',
    );
    return;
  }
  const c = existing.config;
  if (c.ack_policy !== AckPolicy.Explicit || c.deliver_subject !== undefined)
    throw natsError(
      new Error('it must be a pull consumer with explicit acks'),
      `consumer ${o.consumer} on ${stream}`,
    );
  if ((c.filter_subject ?? undefined) !== filter && !(filter === undefined && c.filter_subject === ''))
    log.warn(
      { consumer: o.consumer, filter: c.filter_subject, configured: filter },
      'the existing consumer filters other subjects than configured; it is used as it is',
    );
  if (
    c.ack_wait !== want.ack_wait ||
    c.max_ack_pending !== want.max_ack_pending ||
    c.max_deliver !== want.max_deliver
  ) {
    try {
      await jsm.consumers.update(stream, o.consumer, want);
      log.info({ consumer: o.consumer, ...want, ack_wait: o.ackWait }, 'updated the consumer');
    } catch (err) {
      log.warn(
        { err: natsError(err, 'update consumer').message },
        'could not update the consumer; using it as it is',
      );
    }
  }
}
