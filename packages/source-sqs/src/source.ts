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
  /** Counters: received, deleted, extended (heartbeats), released (made visible at stop), receiveCalls. */
  stats(): Readonly<
    Record<'received' | 'deleted' | 'extended' | 'released' | 'receiveCalls' | 'deleteFailures', number>
  >;
}

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

/** `X-SQS-<Name>` headers from system and message attributes; the message id as `X-SQS-Message-Id`. */
export function headersOf(m: Message): Record<string, string> {
  const h: Record<string, string> = {};
  if (m.MessageId) h['X-SQS-Message-Id'] = m.MessageId;
  for (const [k, v] of Object.entries(m.Attributes ?? {})) if (v !== undefined) h[`X-SQS-${k}`] = v;
  for (const [k, v] of Object.entries(m.MessageAttributes ?? {})) {
    if (!/^[A-Za-z0-9_.-]+$/.test(k)) continue;
    const value =
      v.StringValue ?? (v.BinaryValue ? Buffer.from(v.BinaryValue).toString('base64') : undefined);
    if (value !== undefined) h[`X-SQS-${k}`] = value;
  }
  return h;
}

const encoder = new TextEncoder();

/**
 * Long-poll one or more SQS queues; each message is deleted only after its delivery settled with `ack`, its
 * visibility extended while the invocation runs, FIFO groups delivered in order; polls only with engine capacity.
 */
export const sqsSource = defineSource((options: SqsSourceOptions): SqsSource => {
  checkSqsOptions(options);
  const waitTime = options.waitTime ?? 20;
  const maxMessages = options.maxMessages ?? 10;
  const pollers = options.pollers ?? 1;
  const stats = { received: 0, deleted: 0, extended: 0, released: 0, receiveCalls: 0, deleteFailures: 0 };
  let client: SQSClient | undefined;
  let ownClient = false;
  let abort: AbortController | undefined;
  let loops: Promise<void>[] = [];
  const inflight = new Map<string, InFlight>(); // by receipt handle
  const deliveries = new Set<Promise<void>>();
  const pendingDeletes = new Map<Queue, InFlight[]>();
  let flushTimer: NodeJS.Timeout | undefined;
  let connected = false;
  let lastError: string | undefined;
  let ctxRef: SourceContext | undefined;

  const log = () => ctxRef?.logger;

  const resolveQueue = async (c: SQSClient, q: string): Promise<Queue> => {
    let url = q;
    if (!/^https?:\/\//.test(q)) url = (await c.send(new GetQueueUrlCommand({ QueueName: q }))).QueueUrl ?? q;
    const name = url.split('/').pop() ?? q;
    let visibility = options.visibilityTimeout;
    if (visibility === undefined) {
      const attrs = await c.send(
        new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['VisibilityTimeout'] }),
      );
      const v = Number(attrs.Attributes?.['VisibilityTimeout']);
      visibility = Number.isFinite(v) ? v : undefined;
    }
    return { url, name, fifo: name.endsWith('.fifo'), visibility };
  };

  const flushDeletes = async () => {
    flushTimer = undefined;
    const batches = [...pendingDeletes];
    pendingDeletes.clear();
    await Promise.all(
      batches.map(async ([queue, items]) => {
        for (let i = 0; i < items.length; i += 10) {
          const chunk = items.slice(i, i + 10);
          await deleteBatch(queue, chunk, 2);
        }
      }),
    );
  };

  const deleteBatch = async (queue: Queue, chunk: InFlight[], tries: number): Promise<void> => {
    if (!client) return;
    try {
      const res = await client.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queue.url,
          Entries: chunk.map((m, i) => ({ Id: String(i), ReceiptHandle: m.receipt })),
        }),
      );
      stats.deleted += res.Successful?.length ?? 0;
      const failed = (res.Failed ?? [])
        .map((f) => chunk[Number(f.Id)])
        .filter((m): m is InFlight => m !== undefined);
      if (failed.length > 0) {
        if (tries > 1) return deleteBatch(queue, failed, tries - 1);
        stats.deleteFailures += failed.length;
        log()?.warn(
          { queue: queue.name, failed: res.Failed },
          'delete failed; SQS will redeliver those messages',
        );
      }
    } catch (err) {
      if (tries > 1) return deleteBatch(queue, chunk, tries - 1);
      stats.deleteFailures += chunk.length;
      log()?.warn(
        { queue: queue.name, err: (err as Error).message },
        'delete failed; SQS will redeliver those messages',
      );
    }
  };

  const scheduleDelete = (m: InFlight) => {
    const list = pendingDeletes.get(m.queue) ?? [];
    list.push(m);
    pendingDeletes.set(m.queue, list);
    if (list.length >= 10) void flushDeletes();
    else flushTimer ??= setTimeout(() => void flushDeletes(), 20);
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

  const handle = (ctx: SourceContext, queue: Queue, msg: Message) => {
    if (!msg.ReceiptHandle) return;
    const m: InFlight = { queue, receipt: msg.ReceiptHandle, heartbeat: undefined };
    inflight.set(m.receipt, m);
    startHeartbeat(m);
    const attr = options.topicAttribute
      ? msg.MessageAttributes?.[options.topicAttribute]?.StringValue
      : undefined;
    const group = msg.Attributes?.['MessageGroupId'];
    const p = ctx
      .deliver({
        topic: attr ?? queue.name,
        body: encoder.encode(msg.Body ?? ''),
        headers: headersOf(msg),
        ...(msg.MessageId ? { id: msg.MessageId } : {}),
        ...(queue.fifo && group !== undefined ? { orderingKey: `${queue.url}#${group}` } : {}),
      })
      .then(
        (outcome) => {
          clearInterval(m.heartbeat);
          inflight.delete(m.receipt);
          if (outcome.ack) scheduleDelete(m);
          // Not acked: left invisible until its visibility timeout ends; SQS then redelivers it (and its redrive
          // policy moves it to the DLQ after maxReceiveCount).
        },
        (err: unknown) => {
          clearInterval(m.heartbeat);
          if (!isShutdownError(err)) {
            inflight.delete(m.receipt);
            log()?.error({ err, queue: queue.name }, 'delivery failed');
          }
          // ShutdownError: stays in `inflight`, released at stop.
        },
      )
      .finally(() => deliveries.delete(p));
    deliveries.add(p);
  };

  const poll = async (ctx: SourceContext, queue: Queue, signal: AbortSignal) => {
    let backoff = 100;
    while (!signal.aborted) {
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
          // Not aborted at stop: an abandoned long poll can still be handed messages by the server, which would
          // then stay invisible for their whole visibility timeout. Stop waits for it (at most waitTime) instead.
        );
        connected = true;
        lastError = undefined;
        backoff = 100;
        const messages = res.Messages ?? [];
        stats.received += messages.length;
        if (signal.aborted) {
          // Stopping: a long poll that answered after the stop began is not delivered, only released below.
          for (const msg of messages) {
            if (msg.ReceiptHandle)
              inflight.set(msg.ReceiptHandle, { queue, receipt: msg.ReceiptHandle, heartbeat: undefined });
          }
          return;
        }
        // FIFO: hand messages over in receive order; the engine keeps each group's order (orderingKey).
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

  const release = async () => {
    if (!client || inflight.size === 0 || options.releaseOnStop === false) return;
    const byQueue = new Map<Queue, InFlight[]>();
    for (const m of inflight.values()) byQueue.set(m.queue, [...(byQueue.get(m.queue) ?? []), m]);
    inflight.clear();
    for (const [queue, items] of byQueue) {
      for (let i = 0; i < items.length; i += 10) {
        const chunk = items.slice(i, i + 10);
        await client
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
            (r) => (stats.released += r.Successful?.length ?? 0),
            (err: unknown) =>
              log()?.warn(
                { err: (err as Error).message },
                'could not release messages; they reappear after their visibility timeout',
              ),
          );
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
      await Promise.allSettled(loops);
      loops = [];
      await Promise.allSettled([...deliveries]);
      if (flushTimer) clearTimeout(flushTimer);
      await flushDeletes();
      await release();
      connected = false;
      if (ownClient) client?.destroy();
      client = undefined;
      ctxRef = undefined;
    },
    health(): SourceHealth {
      const detail = { inFlight: inflight.size, ...stats };
      return lastError === undefined ? { connected, detail } : { connected, lastError, detail };
    },
    stats: () => ({ ...stats }),
  };
});
