import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import {
  defineSource,
  isShutdownError,
  type Source,
  type SourceContext,
  type SourceHealth,
} from '@connector/core';
import { checkSqsOptions, type SqsSourceOptions } from './options.js';

/** The SQS source, with counters for health and tests. */
export interface SqsSource extends Source {
  /** Counters: received, deleted, extended (heartbeats), released (made visible again: at stop, or FIFO
   * messages behind a failed one of their group), receiveCalls, deleteRetries, deleteFailures (given up). */
  stats(): Readonly<Record<SqsStat, number>>;
}

/** Names of the SQS source's counters. */
export type SqsStat =
  | 'received'
  | 'deleted'
  | 'extended'
  | 'released'
  | 'receiveCalls'
  | 'deleteRetries'
  | 'deleteFailures';

interface Queue {
  url: string;
  name: string;
  fifo: boolean;
  visibility: number | undefined; // seconds
}

interface InFlight {
  queue: Queue;
  receipt: string;
  heartbeat: NodeJS.Timeout | undefined;
}

// What an HTTP header value may hold as is: tab and printable ASCII.
const HEADER_SAFE = /^[\t\x20-\x7e]*$/;

/** A header value as is when it is printable ASCII, else percent-encoded UTF-8 (`encodeURIComponent`). */
export function headerValue(value: string): string {
  return HEADER_SAFE.test(value) ? value : encodeURIComponent(value);
}

/**
 * `X-SQS-<Name>` headers from system and message attributes (binary values base64; values with non-ASCII or control
 * characters percent-encoded, since HTTP headers cannot carry them); the message id as `X-SQS-Message-Id`.
 */
export function headersOf(m: Message): Record<string, string> {
  const h: Record<string, string> = {};
  if (m.MessageId) h['X-SQS-Message-Id'] = m.MessageId;
  for (const [k, v] of Object.entries(m.Attributes ?? {}))
    if (v !== undefined) h[`X-SQS-${k}`] = headerValue(v);
  for (const [k, v] of Object.entries(m.MessageAttributes ?? {})) {
    if (!/^[A-Za-z0-9_.-]+$/.test(k)) continue;
    const value =
      v.StringValue !== undefined
        ? headerValue(v.StringValue)
        : v.BinaryValue
          ? Buffer.from(v.BinaryValue).toString('base64')
          : undefined;
    if (value !== undefined) h[`X-SQS-${k}`] = value;
  }
  return h;
}

const isAccessDenied = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return /AccessDenied|NotAuthorized/.test(e?.name ?? '') || e?.$metadata?.httpStatusCode === 403;
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const encoder = new TextEncoder();

/** How one delivery ended, for the FIFO group chain behind it. */
type Settled = 'acked' | 'failed' | 'shutdown';

/**
 * Long-poll one or more SQS queues; each message is deleted only after its delivery settled with `ack`, its
 * visibility extended while the invocation runs, FIFO groups delivered in order; polls only with engine capacity.
 */
export const sqsSource = defineSource((options: SqsSourceOptions): SqsSource => {
  checkSqsOptions(options);
  const waitTime = options.waitTime ?? 20;
  const maxMessages = options.maxMessages ?? 10;
  const pollers = options.pollers ?? 1;
  const stats: Record<SqsStat, number> = {
    received: 0,
    deleted: 0,
    extended: 0,
    released: 0,
    receiveCalls: 0,
    deleteRetries: 0,
    deleteFailures: 0,
  };
  let client: SQSClient | undefined;
  let ownClient = false;
  let abort: AbortController | undefined;
  let loops: Promise<void>[] = [];
  const inflight = new Map<string, InFlight>(); // by receipt handle: received, not settled
  const deliveries = new Set<Promise<unknown>>();
  const groups = new Map<string, Promise<Settled>>(); // FIFO: the last delivery of each queue#group
  const pendingDeletes = new Map<Queue, InFlight[]>();
  const flushes = new Set<Promise<unknown>>();
  let flushTimer: NodeJS.Timeout | undefined;
  let connected = false;
  let lastError: string | undefined;
  let ctxRef: SourceContext | undefined;
  // Poll only while some function subscribes to a topic: with an empty topic map (the gateway was unreachable at
  // start, or no function is annotated yet) every message would be deleted as unrouted.
  let subscribed = false;
  let offTopics: (() => void) | undefined;
  const subscriberWaiters = new Set<() => void>();

  const log = () => ctxRef?.logger;
  const waitForSubscribers = (signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      if (subscribed || signal.aborted) return resolve();
      const done = () => {
        subscriberWaiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      subscriberWaiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  const track = <T>(p: Promise<T>, set: Set<Promise<unknown>>): Promise<T> => {
    set.add(p);
    void p.finally(() => set.delete(p)).catch(() => undefined);
    return p;
  };

  const resolveQueue = async (c: SQSClient, q: string): Promise<Queue> => {
    let url = q;
    if (!/^https?:\/\//.test(q)) url = (await c.send(new GetQueueUrlCommand({ QueueName: q }))).QueueUrl ?? q;
    const name = url.split('/').pop() ?? q;
    let visibility = options.visibilityTimeout;
    if (visibility === undefined) {
      try {
        const attrs = await c.send(
          new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['VisibilityTimeout'] }),
        );
        const v = Number(attrs.Attributes?.['VisibilityTimeout']);
        visibility = Number.isFinite(v) ? v : undefined;
      } catch (err) {
        // Without sqs:GetQueueAttributes the queue's visibility timeout is unknown: run without heartbeats.
        if (!isAccessDenied(err)) throw err;
        log()?.warn(
          { queue: name, err: (err as Error).message },
          'cannot read the queue visibility timeout (sqs:GetQueueAttributes denied): no visibility heartbeats; set visibility_timeout',
        );
      }
    }
    return { url, name, fifo: name.endsWith('.fifo'), visibility };
  };

  // Deletes: batched per queue (up to 10 per call, or what gathered within 20 ms), failed entries retried.
  const flushDeletes = (): Promise<void> => {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = undefined;
    const batches = [...pendingDeletes];
    pendingDeletes.clear();
    const p = Promise.all(
      batches.flatMap(([queue, items]) => {
        const chunks: Promise<void>[] = [];
        for (let i = 0; i < items.length; i += 10) chunks.push(deleteBatch(queue, items.slice(i, i + 10), 1));
        return chunks;
      }),
    ).then(() => undefined);
    return track(p, flushes);
  };

  const DELETE_ATTEMPTS = 3;
  const deleteBatch = async (queue: Queue, chunk: InFlight[], attempt: number): Promise<void> => {
    if (!client) return;
    let failed: InFlight[];
    let reason: unknown;
    try {
      const res = await client.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queue.url,
          Entries: chunk.map((m, i) => ({ Id: String(i), ReceiptHandle: m.receipt })),
        }),
      );
      stats.deleted += res.Successful?.length ?? 0;
      failed = (res.Failed ?? [])
        .map((f) => chunk[Number(f.Id)])
        .filter((m): m is InFlight => m !== undefined);
      reason = res.Failed?.map((f) => `${f.Code ?? 'error'}: ${f.Message ?? ''}`.trim());
    } catch (err) {
      failed = chunk;
      reason = (err as Error).message;
    }
    if (failed.length === 0) return;
    if (attempt < DELETE_ATTEMPTS) {
      stats.deleteRetries += failed.length;
      log()?.info({ queue: queue.name, count: failed.length, attempt, reason }, 'delete failed; retrying');
      await sleep(100 * 3 ** (attempt - 1));
      return deleteBatch(queue, failed, attempt + 1);
    }
    stats.deleteFailures += failed.length;
    log()?.warn(
      { queue: queue.name, count: failed.length, reason },
      'delete failed; SQS will redeliver those messages',
    );
  };

  const scheduleDelete = (m: InFlight) => {
    const list = pendingDeletes.get(m.queue) ?? [];
    list.push(m);
    pendingDeletes.set(m.queue, list);
    if (list.length >= 10) void flushDeletes();
    else flushTimer ??= setTimeout(() => void flushDeletes(), 20);
  };

  // Make messages visible again at once (stop, or FIFO messages behind a failed one of their group).
  const release = async (items: InFlight[]) => {
    if (!client || items.length === 0) return;
    const byQueue = new Map<Queue, InFlight[]>();
    for (const m of items) byQueue.set(m.queue, [...(byQueue.get(m.queue) ?? []), m]);
    const calls: Promise<unknown>[] = [];
    for (const [queue, list] of byQueue) {
      for (let i = 0; i < list.length; i += 10) {
        const chunk = list.slice(i, i + 10);
        calls.push(
          client
            .send(
              new ChangeMessageVisibilityBatchCommand({
                QueueUrl: queue.url,
                Entries: chunk.map((m, j) => ({
                  Id: String(j),
                  ReceiptHandle: m.receipt,
                  VisibilityTimeout: 0,
                })),
              }),
            )
            .then(
              (r) => {
                stats.released += r.Successful?.length ?? 0;
              },
              (err: unknown) =>
                log()?.warn(
                  { queue: queue.name, err: (err as Error).message },
                  'could not release messages; they reappear after their visibility timeout',
                ),
            ),
        );
      }
    }
    await Promise.all(calls);
  };

  const startHeartbeat = (m: InFlight) => {
    const vt = m.queue.visibility;
    if (options.heartbeat === false || vt === undefined || vt < 2) return;
    m.heartbeat = setInterval(
      () => {
        if (!client) return;
        client
          .send(
            new ChangeMessageVisibilityCommand({
              QueueUrl: m.queue.url,
              ReceiptHandle: m.receipt,
              VisibilityTimeout: vt,
            }),
          )
          .then(
            () => stats.extended++,
            (err: unknown) =>
              log()?.warn(
                { queue: m.queue.name, err: (err as Error).message },
                'visibility heartbeat failed',
              ),
          );
      },
      (vt * 1000) / 2,
    );
  };

  const settle = (m: InFlight) => {
    clearInterval(m.heartbeat);
    m.heartbeat = undefined;
    inflight.delete(m.receipt);
  };

  const deliverOne = (ctx: SourceContext, m: InFlight, msg: Message, group: string | undefined) => {
    const attr = options.topicAttribute
      ? msg.MessageAttributes?.[options.topicAttribute]?.StringValue
      : undefined;
    return ctx
      .deliver({
        topic: attr ?? m.queue.name,
        body: encoder.encode(msg.Body ?? ''),
        headers: headersOf(msg),
        ...(msg.MessageId ? { id: msg.MessageId } : {}),
        ...(group !== undefined ? { orderingKey: `${m.queue.url}#${group}` } : {}),
      })
      .then(
        (outcome): Settled => {
          settle(m);
          if (outcome.ack) {
            scheduleDelete(m);
            return 'acked';
          }
          // Not acked: left invisible until its visibility timeout ends; SQS then redelivers it (and its redrive
          // policy moves it to the DLQ after maxReceiveCount).
          return 'failed';
        },
        (err: unknown): Settled => {
          clearInterval(m.heartbeat);
          // ShutdownError: stays in `inflight`, released at stop.
          if (isShutdownError(err)) return 'shutdown';
          settle(m);
          log()?.error({ err, queue: m.queue.name }, 'delivery failed');
          return 'failed';
        },
      );
  };

  const handle = (ctx: SourceContext, queue: Queue, msg: Message) => {
    if (!msg.ReceiptHandle) return;
    const m: InFlight = { queue, receipt: msg.ReceiptHandle, heartbeat: undefined };
    inflight.set(m.receipt, m);
    startHeartbeat(m);
    const group = queue.fifo ? msg.Attributes?.['MessageGroupId'] : undefined;
    if (group === undefined) {
      track(deliverOne(ctx, m, msg, undefined), deliveries);
      return;
    }
    // FIFO: a group's messages are delivered one after another. Once one is not acked, the rest of the group is
    // not delivered but made visible again: SQS keeps the group locked while the failed message is invisible and
    // then hands the group over again in order, so nothing is delivered ahead of a message that failed.
    const key = `${queue.url}#${group}`;
    const prev = groups.get(key);
    const run: Promise<Settled> = prev
      ? prev.then((before) => {
          if (before === 'acked') return deliverOne(ctx, m, msg, group);
          clearInterval(m.heartbeat);
          if (before === 'shutdown') return before; // stays in `inflight`, released at stop
          settle(m);
          return release([m]).then(() => before);
        })
      : deliverOne(ctx, m, msg, group);
    groups.set(key, run);
    void run.then(() => {
      if (groups.get(key) === run) groups.delete(key);
    });
    track(run, deliveries);
  };

  const poll = async (ctx: SourceContext, queue: Queue, signal: AbortSignal) => {
    let backoff = 100;
    while (!signal.aborted) {
      if (!subscribed) {
        await waitForSubscribers(signal);
        continue;
      }
      await ctx.waitForCapacity(signal);
      if (signal.aborted || !client) return;
      try {
        stats.receiveCalls++;
        const res = await client.send(
          new ReceiveMessageCommand({
            QueueUrl: queue.url,
            MaxNumberOfMessages: maxMessages,
            WaitTimeSeconds: waitTime,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: ['All'],
            ...(options.visibilityTimeout !== undefined
              ? { VisibilityTimeout: options.visibilityTimeout }
              : {}),
          }),
          // By default a long poll is not aborted at stop: an abandoned one can still be handed messages by the
          // server, which then stay invisible for their whole visibility timeout. Stop waits for it (at most
          // waitTime) instead, unless abortPollOnStop.
          options.abortPollOnStop ? { abortSignal: signal } : {},
        );
        connected = true;
        lastError = undefined;
        backoff = 100;
        const messages = res.Messages ?? [];
        stats.received += messages.length;
        if (signal.aborted) {
          // Stopping: a long poll that answered after the stop began is not delivered, only released at stop.
          for (const msg of messages) {
            if (msg.ReceiptHandle)
              inflight.set(msg.ReceiptHandle, { queue, receipt: msg.ReceiptHandle, heartbeat: undefined });
          }
          return;
        }
        // FIFO: hand messages over in receive order; each group's chain keeps that order.
        for (const msg of messages) handle(ctx, queue, msg);
      } catch (err) {
        if (signal.aborted) return;
        connected = false;
        lastError = (err as Error).message;
        log()?.warn({ queue: queue.name, err: lastError, retryInMs: backoff }, 'ReceiveMessage failed');
        await new Promise<void>((r) => {
          const t = setTimeout(r, backoff);
          signal.addEventListener(
            'abort',
            () => {
              clearTimeout(t);
              r();
            },
            { once: true },
          );
        });
        backoff = Math.min(backoff * 2, 30_000);
      }
    }
  };

  return {
    name: 'sqs',
    async start(ctx) {
      ctxRef = ctx;
      if (options.client) client = options.client;
      else {
        client = new SQSClient({
          ...options.clientConfig,
          ...(options.region !== undefined ? { region: options.region } : {}),
          ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
        });
        ownClient = true;
      }
      const queues = await Promise.all(
        options.queues.map((q) => resolveQueue(client as SQSClient, q.trim())),
      );
      connected = true;
      const idle = () =>
        ctx.logger.info('no function subscribes to any topic (yet): not polling until one does');
      subscribed = ctx.topics().length > 0;
      if (!subscribed) idle();
      offTopics = ctx.onTopicsChange((topics) => {
        const was = subscribed;
        subscribed = topics.length > 0;
        if (subscribed) for (const wake of [...subscriberWaiters]) wake();
        else if (was) idle();
      });
      abort = new AbortController();
      const signal = abort.signal;
      loops = queues.flatMap((q) => Array.from({ length: pollers }, () => poll(ctx, q, signal)));
      ctx.logger.info(
        { queues: queues.map((q) => q.name), waitTime, maxMessages, pollers },
        'SQS source polling',
      );
    },
    async stop() {
      abort?.abort();
      offTopics?.();
      offTopics = undefined;
      await Promise.allSettled(loops);
      loops = [];
      // Every delivery settles or rejects with ShutdownError once the connector drained or gave up.
      while (deliveries.size > 0) await Promise.allSettled([...deliveries]);
      await flushDeletes();
      while (flushes.size > 0) await Promise.allSettled([...flushes]);
      const unsettled = [...inflight.values()];
      inflight.clear();
      for (const m of unsettled) clearInterval(m.heartbeat);
      if (options.releaseOnStop !== false) await release(unsettled);
      connected = false;
      if (ownClient) client?.destroy();
      client = undefined;
      ownClient = false;
      ctxRef = undefined;
    },
    health(): SourceHealth {
      const detail = { inFlight: inflight.size, polling: subscribed && loops.length > 0, ...stats };
      return lastError === undefined ? { connected, detail } : { connected, lastError, detail };
    },
    stats: () => ({ ...stats }),
  };
});
