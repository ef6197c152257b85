import { hash } from 'node:crypto';
import { type Message, SQSClient } from '@aws-sdk/client-sqs';
import {
  type AckDecision,
  type DeliveryOutcome,
  defineSource,
  HealthState,
  InFlight,
  type Source,
  type SourceContext,
  SourceError,
  type SourceHealth,
  type SourceMessage,
  settleDelivery,
} from '@connector/core';
import { Deleter } from './deleter.js';
import { GroupChains } from './fifo.js';
import { headersOf } from './headers.js';
import { SqsHttpHandler, sdkHandler } from './http.js';
import { checkSqsOptions, type SqsSourceOptions } from './options.js';
import { poll, Subscribers } from './poller.js';
import { type Queue, queueDepth, type Received, resolveQueue } from './queue.js';
import { newStats, type SqsStat } from './stats.js';
import { Visibility } from './visibility.js';
import { fastCalls, type SqsCalls } from './wire.js';

/** The SQS source, with counters for health and tests. */
export interface SqsSource extends Source {
  /** Counters: received, deleted, extended (heartbeats), released (made visible again: at stop, or FIFO
   * messages behind a failed one of their group), receiveCalls, deleteRetries, deleteFailures (given up),
   * corrupted (a body that did not match its MD5: not delivered, left for SQS to redeliver). */
  stats(): Readonly<Record<SqsStat, number>>;
}

/** What one `start()` set up, until its `stop()`. */
interface Run {
  readonly ctx: SourceContext;
  /** The SDK client (destroyed at stop when the source made it). */
  readonly client: SQSClient;
  /** What the poller, deleter and heartbeats call: `client`, or `fastCalls` in front of it. */
  readonly calls: SqsCalls;
  readonly ownClient: boolean;
  readonly abort: AbortController;
  readonly queues: readonly Queue[];
  readonly subscribers: Subscribers;
  readonly deleter: Deleter;
  readonly visibility: Visibility;
  readonly loops: Promise<void>[];
}

const encoder = new TextEncoder();

/**
 * Long-poll one or more SQS queues; each message is deleted only after its delivery settled with `ack`, its
 * visibility extended while the invocation runs, FIFO groups delivered in order (unless `ordering: 'none'`); polls
 * only with engine capacity.
 */
export const sqsSource = defineSource((options: SqsSourceOptions): SqsSource => {
  checkSqsOptions(options);
  const waitTime = options.waitTime ?? 20;
  const maxMessages = options.maxMessages ?? 10;
  const pollers = options.pollers ?? 1;
  // `none`: a FIFO message is delivered and settled on its own, like a standard queue's (no group chain, no key).
  const ordered = options.ordering !== 'none';
  const retryDelay = options.receiveRetryDelay ?? { min: 100, max: 30_000 };
  const stats = newStats();
  const health = new HealthState();
  const deliveries = new InFlight();
  const groups = new GroupChains();
  const unsettled = new Map<string, Received>(); // by receipt handle: received, not settled
  let run: Run | undefined;

  const createClient = (): { client: SQSClient; calls: SqsCalls; ownClient: boolean } => {
    if (options.client) return { client: options.client, calls: options.client, ownClient: false };
    const given = options.clientConfig?.requestHandler;
    const http = given === undefined ? new SqsHttpHandler() : undefined;
    const client = new SQSClient({
      // The middleware stack resolved once per command class, not on every call (a documented SDK option; the source
      // never changes the stack once created): ~6 % of the CPU per message (pnpm bench --profile --only e2e-sqs).
      cacheMiddleware: true,
      ...options.clientConfig,
      ...(options.region !== undefined ? { region: options.region } : {}),
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      // Requests over core's HTTP client unless the caller brings a handler of its own (see SqsHttpHandler).
      requestHandler: given ?? sdkHandler(http as SqsHttpHandler),
      // The SDK's MD5 check fails a whole receive for one changed body: the source checks each message (`intact`).
      md5: false,
    });
    const logged = options.clientConfig?.logger !== undefined;
    // Without a logger of the caller's the SDK logs to a no-op logger, yet its logger middleware still builds the
    // redacted copy of every request and response (all messages of a receive) to hand it: ~1.5 % of the CPU.
    if (!logged) client.middlewareStack.remove('loggerMiddleware');
    // The hot path's calls without the SDK's middleware (wire.ts), unless the caller routes or logs the calls itself.
    const fast = http !== undefined && !logged && options.fastPath !== false;
    return { client, calls: fast ? fastCalls(client, http) : client, ownClient: true };
  };

  /** A received SQS message as the connector's message. */
  const sourceMessage = (queue: Queue, msg: Message, group: string | undefined): SourceMessage => {
    const attr = options.topicAttribute
      ? msg.MessageAttributes?.[options.topicAttribute]?.StringValue
      : undefined;
    return {
      topic: attr ?? queue.name,
      body: encoder.encode(msg.Body ?? ''),
      headers: headersOf(msg),
      ...(msg.MessageId !== undefined ? { id: msg.MessageId } : {}),
      ...(group !== undefined ? { orderingKey: `${queue.url}#${group}` } : {}),
      ...sentAt(msg),
    };
  };

  /** Deliver one message and settle it: delete on `ack`, keep on `nack` or `shutdown`. */
  const deliver = async (r: Run, m: Received, msg: Message, group: string | undefined) => {
    let delivery: Promise<DeliveryOutcome>;
    try {
      delivery = r.ctx.deliver(sourceMessage(m.queue, msg, group));
    } catch (err) {
      delivery = Promise.reject(err); // a synchronous throw settles like a rejection: never an ack
    }
    const decision = await settleDelivery(delivery, (err) =>
      r.ctx.logger.error({ err, queue: m.queue.name }, 'delivery failed'),
    );
    settle(r, m, decision);
    return decision;
  };

  /**
   * `ack`: deleted. `nack`: left invisible until its visibility timeout ends; SQS then redelivers it (and its redrive
   * policy moves it to the DLQ after maxReceiveCount). `shutdown`: stays unsettled, released at stop.
   */
  const settle = (r: Run, m: Received, decision: AckDecision) => {
    r.visibility.unwatch(m);
    if (decision === 'shutdown') return;
    unsettled.delete(m.receipt);
    if (decision === 'ack') r.deleter.delete(m);
  };

  /** FIFO queues whose messages came without a MessageGroupId (warned about once each). */
  const groupless = new Set<string>();

  /**
   * A FIFO message's group. Without its MessageGroupId (a server that sent no system attributes) the whole queue is
   * one group: one message at a time, but never out of order.
   */
  const groupOf = (r: Run, queue: Queue, msg: Message): string => {
    const group = msg.Attributes?.['MessageGroupId'];
    if (group !== undefined) return group;
    if (!groupless.has(queue.url)) {
      groupless.add(queue.url);
      r.ctx.logger.warn(
        { queue: queue.name },
        'FIFO message without MessageGroupId (no system attributes received): the queue is delivered as one group',
      );
    }
    return '';
  };

  /** Bodies are checked against their MD5 (as the SDK does) unless the caller's client config says `md5: false`. */
  const checkMd5 = options.clientConfig?.md5 !== false;

  /**
   * False for a message whose body does not match the MD5 SQS sent with it (changed on the way): it is neither
   * delivered nor deleted (`corrupt`) and comes back after its visibility timeout (SQS's redrive policy moves it to
   * the dead-letter queue after maxReceiveCount). Its batch-mates are delivered: the SDK's own check would fail the
   * whole receive, and with it every message received with this one, until the redrive policy dead-letters them all.
   */
  const intact = (r: Run, queue: Queue, msg: Message): boolean => {
    if (!checkMd5 || msg.MD5OfBody === undefined || hash('md5', msg.Body ?? '', 'hex') === msg.MD5OfBody)
      return true;
    stats.corrupted++;
    r.ctx.logger.error(
      {
        queue: queue.name,
        messageId: msg.MessageId,
        receiveCount: msg.Attributes?.['ApproximateReceiveCount'],
      },
      'SQS message body does not match its MD5 (changed in transit): not delivered, left for SQS to redeliver',
    );
    return false;
  };

  /** A message that failed `intact`: settled as `nack` without a delivery (left invisible until SQS redelivers it). */
  const corrupt = async (r: Run, m: Received): Promise<AckDecision> => {
    settle(r, m, 'nack');
    return 'nack';
  };

  /** The messages of one receive: tracked and kept invisible (one heartbeat) until each settled, each delivered
   * alone or after its FIFO group (with `ordering: 'key'`). */
  const handle = (r: Run, queue: Queue, messages: readonly Message[]) => {
    const received: [Received, Message][] = [];
    for (const msg of messages) {
      if (!msg.ReceiptHandle) continue;
      const m: Received = { queue, receipt: msg.ReceiptHandle, heartbeat: undefined };
      unsettled.set(m.receipt, m);
      received.push([m, msg]);
    }
    r.visibility.watch(
      queue,
      received.map(([m]) => m),
    );
    for (const [m, msg] of received) {
      const group = queue.fifo && ordered ? groupOf(r, queue, msg) : undefined;
      // A changed body settles as `nack` undelivered: the rest of its FIFO group is then held back, as after a failure.
      const take = intact(r, queue, msg) ? () => deliver(r, m, msg, group) : () => corrupt(r, m);
      if (group === undefined) {
        deliveries.track(take());
        continue;
      }
      const holdBack = async (before: 'nack' | 'shutdown') => {
        r.visibility.unwatch(m);
        if (before === 'shutdown') return; // stays unsettled, released at stop
        unsettled.delete(m.receipt);
        await r.visibility.release([m]);
      };
      deliveries.track(groups.run(`${queue.url}#${group}`, take, holdBack));
    }
  };

  /** Messages a long poll brought after the stop began: not delivered, released at stop. */
  const late = (queue: Queue, messages: Message[]) => {
    for (const msg of messages)
      if (msg.ReceiptHandle)
        unsettled.set(msg.ReceiptHandle, { queue, receipt: msg.ReceiptHandle, heartbeat: undefined });
  };

  /** Every configured queue resolved (URL, FIFO, visibility); a failure fails the start. */
  const resolveQueues = async (client: SQSClient, ownClient: boolean, ctx: SourceContext) => {
    try {
      const queues = await Promise.all(
        options.queues.map((q) => resolveQueue(client, q.trim(), options.visibilityTimeout, ctx.logger)),
      );
      health.up();
      return queues;
    } catch (err) {
      health.down(err);
      if (ownClient) client.destroy();
      throw err;
    }
  };

  const newRun = (
    ctx: SourceContext,
    { client, calls, ownClient }: ReturnType<typeof createClient>,
    queues: readonly Queue[],
  ): Run => ({
    ctx,
    client,
    calls,
    ownClient,
    abort: new AbortController(),
    queues,
    subscribers: new Subscribers(ctx),
    deleter: new Deleter(calls, stats, health, ctx.logger),
    visibility: new Visibility(calls, stats, ctx.logger, options.heartbeat !== false),
    loops: [],
  });

  /** One long-poll loop on `queue` until the run stops. */
  const startPoller = (r: Run, queue: Queue) =>
    poll(
      {
        client: r.calls,
        queue,
        ctx: r.ctx,
        subscribers: r.subscribers,
        health,
        stats,
        waitTime,
        maxMessages,
        visibilityTimeout: options.visibilityTimeout,
        abortPollOnStop: options.abortPollOnStop === true,
        retryDelay,
        // FIFO: messages are handed over in receive order; each group's chain keeps that order.
        onMessages: (q, messages) => handle(r, q, messages),
        onLate: late,
      },
      r.abort.signal,
    );

  return {
    name: 'sqs',

    async start(ctx) {
      const made = createClient();
      const queues = await resolveQueues(made.client, made.ownClient, ctx);
      const r = newRun(ctx, made, queues);
      run = r;
      for (const queue of queues) for (let i = 0; i < pollers; i++) r.loops.push(startPoller(r, queue));
      ctx.logger.info(
        {
          queues: queues.map((q) => q.name),
          waitTime,
          maxMessages,
          pollers,
          fastPath: r.calls !== r.client, // the per-message calls without the SDK's middleware (wire.ts)
        },
        'SQS source polling',
      );
    },

    async stop() {
      const r = run;
      run = undefined;
      if (!r) return;
      r.abort.abort();
      r.subscribers.close();
      await Promise.allSettled(r.loops);
      // Every delivery settles or rejects with ShutdownError once the connector drained or gave up.
      await deliveries.idle();
      await r.deleter.idle();
      const left = [...unsettled.values()];
      unsettled.clear();
      for (const m of left) r.visibility.unwatch(m);
      if (options.releaseOnStop !== false) await r.visibility.release(left);
      health.down();
      if (r.ownClient) r.client.destroy();
    },

    health(): SourceHealth {
      return health.snapshot({
        inFlight: unsettled.size,
        polling: run?.subscribers.any === true,
        ...stats,
      });
    },

    async backlog() {
      const r = run;
      if (!r) throw new SourceError('SQS source not running');
      const depths = await Promise.all(r.queues.map((q) => queueDepth(r.client, q)));
      return r.queues.flatMap((q, i) => {
        const d = depths[i] as { ready: number; unacked: number };
        return [
          { queue: q.name, state: 'ready' as const, value: d.ready },
          { queue: q.name, state: 'unacked' as const, value: d.unacked },
        ];
      });
    },

    stats: () => ({ ...stats }),
  };
});

/** When SQS took the message (its `SentTimestamp` system attribute, ms since epoch), for `connector.dev/max-age`. */
function sentAt(msg: Message): { timestamp?: number } {
  const at = Number(msg.Attributes?.SentTimestamp);
  return at > 0 ? { timestamp: at } : {};
}
