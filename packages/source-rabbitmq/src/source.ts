import {
  Backoff,
  type BrokerError,
  type DeliveryOutcome,
  defineSource,
  HealthState,
  InFlight,
  type Logger,
  type Source,
  type SourceContext,
  SourceError,
  type SourceHealth,
  settleDelivery,
  sleep,
} from '@connector/core';
import type { ConsumeMessage } from 'amqplib';
import { Session } from './consumer.js';
import { amqpError } from './errors.js';
import { toSourceMessage } from './message.js';
import {
  type RabbitmqSourceOptions,
  type ResolvedQueue,
  type ResolvedRabbitmqOptions,
  redactUrl,
  resolveRabbitmqOptions,
} from './options.js';
import { replyTarget, sendReply } from './reply.js';
import { bindingKeyProblem } from './routing.js';
import { declareTopology, queueDepths, syncBindings } from './topology.js';

/** Counters a RabbitMQ source keeps (also in `health().detail`). */
export interface RabbitmqStats {
  /** Messages acked after their delivery settled (counted when the ack reached the channel). */
  acked: number;
  /** Failed deliveries requeued (after the back-off). */
  requeued: number;
  /** Failed deliveries rejected into the dead-letter exchange. */
  deadLettered: number;
  /** Deliveries that settled (or whose queued ack was due) after their channel had closed: not acked (the broker
   * had requeued them). */
  stale: number;
  /** Connections re-established after a loss. */
  reconnects: number;
  /** Replies published to reply-to queues. */
  replies: number;
}

/** The RabbitMQ source: a `Source` plus read-only views for diagnostics and tests. */
export interface RabbitmqSource extends Source {
  /** The resolved options (password omitted, the URL's password shown as `***`). */
  readonly options: Omit<ResolvedRabbitmqOptions, 'password'>;
  /** Binding keys of the connector's queue on the exchange, as this process made them. */
  bindings(): readonly string[];
  /** Deliveries started and not settled (acked, nacked or left) yet. */
  pending(): number;
  /** Counters since creation. */
  stats(): Readonly<RabbitmqStats>;
}

interface Run {
  readonly ctx: SourceContext;
  readonly log: Logger;
  /** Aborted by stop(): ends back-off sleeps and the reconnect loop. */
  readonly abort: AbortController;
  readonly inFlight: InFlight;
  session: Session | undefined;
  stopping: boolean;
  reconnecting: Promise<void> | undefined;
  /** Serialises binding changes. */
  bindChain: Promise<void>;
  offTopics: (() => void) | undefined;
}

/** Validate options and create a RabbitMQ source (throws a one-line ConfigError on invalid options). */
export const rabbitmqSource = defineSource<RabbitmqSourceOptions, RabbitmqSource>((options) => {
  const o = resolveRabbitmqOptions(options);
  const health = new HealthState();
  const stats: RabbitmqStats = {
    acked: 0,
    requeued: 0,
    deadLettered: 0,
    stale: 0,
    reconnects: 0,
    replies: 0,
  };
  const bound = new Set<string>();
  const boundQueue = o.queues.find((q) => q.bound);
  const redelivery = new Backoff({ ...o.redeliveryDelay, jitter: false });
  const where = redactUrl(o.url);
  let run: Run | undefined;

  /** The binding keys wanted now: the fixed `topics`, or the functions' topics (invalid ones skipped). */
  const wantedKeys = (r: Run, topics: readonly string[]): string[] => {
    if (o.topics) return [...o.topics];
    return topics.filter((t) => {
      const problem = bindingKeyProblem(t);
      if (problem) r.log.warn({ topic: t }, `not binding an invalid key: expected ${problem}`);
      return problem === undefined;
    });
  };

  /** Bind/unbind the connector's queue to follow `topics` (serialised; a failure is logged and retried on the
   * next change or reconnect, never thrown). */
  const follow = (r: Run, topics: readonly string[]): Promise<void> => {
    r.bindChain = r.bindChain.then(async () => {
      const s = r.session;
      if (!boundQueue || !s?.open || r.stopping) return; // the next session binds what is wanted then
      try {
        const { added, removed } = await syncBindings(
          s.connection,
          boundQueue.name,
          o.exchange,
          wantedKeys(r, topics),
          bound,
        );
        if (added.length > 0 || removed.length > 0)
          r.log.info({ queue: boundQueue.name, exchange: o.exchange, added, removed }, 'bindings changed');
      } catch (err) {
        health.failed(err);
        r.log.warn({ err }, 'binding the queue failed; retrying on the next change or reconnect');
      }
    });
    return r.bindChain;
  };

  /** One connection: connect, declare, bind, consume. Throws a normalised BrokerError. */
  const openSession = async (r: Run): Promise<void> => {
    const s = await Session.open(o, events(r));
    try {
      await declareTopology(s.connection, o);
      if (boundQueue) {
        await syncBindings(s.connection, boundQueue.name, o.exchange, wantedKeys(r, keysNow(r)), bound);
      }
      if (r.stopping) throw new SourceError('rabbitmq source stopped while connecting');
      await s.consume(o, events(r));
    } catch (err) {
      await s.close();
      throw amqpError(err, 'setting up the consumer');
    }
    if (!s.open) throw amqpError(new Error('connection closed while setting up'), 'setting up the consumer');
    r.session = s;
    health.up();
    // the topics may have changed while this connection was being set up (follow() skips without a session)
    const want = wantedKeys(r, keysNow(r));
    if (boundQueue && (want.length !== bound.size || want.some((k) => !bound.has(k))))
      void follow(r, keysNow(r));
    r.log.info(
      {
        url: where,
        queues: o.queues.map((q) => q.name),
        exchange: boundQueue ? o.exchange : undefined,
        bindings: [...bound],
        prefetch: o.prefetch,
      },
      'consuming from RabbitMQ',
    );
  };

  const keysNow = (r: Run): readonly string[] => (o.topics ? o.topics : r.ctx.topics());

  const events = (r: Run) => ({
    message: (s: Session, q: ResolvedQueue, msg: ConsumeMessage) => {
      // not delivered, not acked: it goes back to the queue when the channel closes
      if (r.stopping || !s.open) return;
      void r.inFlight.track(handle(r, s, q, msg));
    },
    closed: (s: Session, err: unknown) => {
      if (r.session !== s) return;
      r.session = undefined;
      health.down(err ?? new Error('connection closed'));
      if (r.stopping) return;
      r.log.warn(
        { err: err === undefined ? undefined : amqpError(err, 'connection').message },
        'RabbitMQ connection lost; reconnecting',
      );
      r.reconnecting ??= reconnect(r).finally(() => {
        r.reconnecting = undefined;
      });
    },
    acksFlushed: (sent: number, lost: number) => {
      stats.acked += sent;
      stats.stale += lost;
    },
  });

  /** Deliver one message, then ack (settled), nack into the dead-letter exchange or requeue after a back-off
   * (failed), or leave it (shutdown). Only ever through the session it came on, and only while that is open. */
  const handle = async (r: Run, s: Session, q: ResolvedQueue, msg: ConsumeMessage): Promise<void> => {
    let outcome: DeliveryOutcome | undefined;
    const delivery = r.ctx.deliver(toSourceMessage(msg, q)).then((out) => {
      outcome = out;
      return out;
    });
    const decision = await settleDelivery(delivery, (err) =>
      r.log.error({ err, routingKey: msg.fields.routingKey }, 'delivery failed unexpectedly; not acking'),
    );
    if (decision === 'shutdown') return; // the channel close requeues it
    if (!s.open) {
      stats.stale++; // its delivery tag died with the channel; the broker has requeued the message
      return;
    }
    if (decision === 'ack') {
      await reply(r, s, msg, outcome);
      if (s.ack(msg))
        redelivery.reset(); // counted in `acked` once sent (or `stale` when the channel closed first)
      else stats.stale++;
      return;
    }
    if (!o.requeueFailed) {
      if (s.nack(msg, false)) stats.deadLettered++;
      else stats.stale++;
      return;
    }
    // requeue after a back-off, so a failing function is not retried in a hot loop; the message stays un-acked
    // (and counts against the prefetch window) meanwhile
    const waited = await sleep(redelivery.next(), r.abort.signal);
    if (!waited) return; // stopping: the channel close requeues it
    if (s.nack(msg, true)) stats.requeued++;
    else stats.stale++;
  };

  const reply = async (r: Run, s: Session, msg: ConsumeMessage, outcome: DeliveryOutcome | undefined) => {
    const to = outcome ? replyTarget(msg, o.replyTo) : undefined;
    if (to === undefined || outcome === undefined) {
      if (o.replyTo.length > 0 && typeof msg.properties.replyTo === 'string' && msg.properties.replyTo !== '')
        r.log.debug({ replyTo: msg.properties.replyTo }, 'reply-to not in reply_to_allow: no reply sent');
      return;
    }
    try {
      if (await sendReply(s, to, msg, outcome)) stats.replies++;
    } catch (err) {
      r.log.warn({ err, replyTo: to }, 'could not publish the reply; acking the request anyway');
    }
  };

  /** Reconnect with back-off until connected, stopped, or refused for good (then the connector restarts us). */
  const reconnect = async (r: Run): Promise<void> => {
    const delays = new Backoff(o.reconnectDelay);
    for (;;) {
      if (!(await sleep(delays.next(), r.abort.signal)) || r.stopping) return;
      try {
        await openSession(r);
        stats.reconnects++;
        return;
      } catch (err) {
        const e = err as BrokerError;
        health.down(e);
        if (r.stopping) return;
        if (e.canRetry === false) {
          r.log.error(
            { err: e.message, code: e.code },
            'RabbitMQ refused the connection; restarting the source',
          );
          r.ctx.fail(e);
          return;
        }
        r.log.warn({ err: e.message, attempt: delays.failures }, 'reconnect failed; retrying');
      }
    }
  };

  const source: RabbitmqSource = {
    name: 'rabbitmq',
    options: (({ password: _p, ...rest }) => ({ ...rest, url: new URL(where) }))(o),

    async start(ctx) {
      if (run) throw new SourceError('rabbitmq source already started');
      const r: Run = {
        ctx,
        log: ctx.logger,
        abort: new AbortController(),
        inFlight: new InFlight(),
        session: undefined,
        stopping: false,
        reconnecting: undefined,
        bindChain: Promise.resolve(),
        offTopics: undefined,
      };
      run = r;
      if (boundQueue && !o.topics) r.offTopics = ctx.onTopicsChange((topics) => void follow(r, topics));
      try {
        await openSession(r);
      } catch (err) {
        r.offTopics?.();
        run = undefined;
        health.down(err);
        throw err;
      }
      if (boundQueue && !o.topics && ctx.topics().length === 0)
        r.log.warn('no function has a topic annotation yet: the queue has no bindings');
    },

    async stop() {
      const r = run;
      if (!r) return;
      r.stopping = true;
      r.offTopics?.();
      r.abort.abort();
      await r.reconnecting; // ends at once when sleeping; a connection being set up is finished or dropped
      const s = r.session;
      await s?.cancel();
      // deliveries settle (acked on the still-open channel) or reject with ShutdownError (left un-acked)
      await r.inFlight.idle();
      await r.bindChain;
      await s?.close(); // whatever is still un-acked goes back to the queue
      r.session = undefined;
      health.down();
      if (run === r) run = undefined;
      r.log.info('RabbitMQ source stopped');
    },

    health(): SourceHealth {
      return health.snapshot({
        url: where,
        queues: o.queues.map((q) => q.name),
        exchange: boundQueue ? o.exchange : undefined,
        bindings: [...bound],
        prefetch: o.prefetch,
        pending: run?.inFlight.size ?? 0,
        ...stats,
      });
    },

    async backlog() {
      const s = run?.session;
      if (!s?.open) throw new SourceError('rabbitmq source not connected');
      const names = o.queues.map((q) => q.name);
      const depths = await queueDepths(s.connection, names);
      return names.map((queue, i) => ({ queue, state: 'ready' as const, value: depths[i] ?? 0 }));
    },

    bindings: () => [...bound],
    pending: () => run?.inFlight.size ?? 0,
    stats: () => ({ ...stats }),
  };
  return source;
});
