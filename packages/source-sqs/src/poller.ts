import { type Message, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { Backoff, type HealthState, type SourceContext, sleep } from '@connector/core';
import { sqsError } from './errors.js';
import type { Queue } from './queue.js';
import type { SqsStats } from './stats.js';
import type { SqsCalls } from './wire.js';

/**
 * Whether some function subscribes to a topic. The source polls only then: with an empty topic map (the gateway
 * was unreachable at start, or no function is annotated yet) every message would be deleted as unrouted.
 */
export class Subscribers {
  private subscribed: boolean;
  private readonly waiters = new Set<() => void>();
  private readonly off: () => void;

  constructor(ctx: SourceContext) {
    const idle = () =>
      ctx.logger.info('no function subscribes to any topic (yet): not polling until one does');
    this.subscribed = ctx.topics().length > 0;
    if (!this.subscribed) idle();
    this.off = ctx.onTopicsChange((topics) => {
      const was = this.subscribed;
      this.subscribed = topics.length > 0;
      if (this.subscribed) for (const wake of [...this.waiters]) wake();
      else if (was) idle();
    });
  }

  /** Some function subscribes now. */
  get any(): boolean {
    return this.subscribed;
  }

  /** Resolves once some function subscribes, or `signal` aborts. */
  wait(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.subscribed || signal.aborted) return resolve();
      const done = () => {
        this.waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Stop listening to topic changes. */
  close(): void {
    this.off();
    for (const wake of [...this.waiters]) wake();
  }
}

/** What one poller needs. */
export interface PollerOptions {
  readonly client: SqsCalls;
  readonly queue: Queue;
  readonly ctx: SourceContext;
  readonly subscribers: Subscribers;
  readonly health: HealthState;
  readonly stats: SqsStats;
  /** Long-poll wait, seconds. */
  readonly waitTime: number;
  /** Messages per ReceiveMessage. */
  readonly maxMessages: number;
  /** Visibility timeout asked for on receive, seconds (default: the queue's). */
  readonly visibilityTimeout: number | undefined;
  /** Abort a long poll in progress at stop instead of waiting for it. */
  readonly abortPollOnStop: boolean;
  /** Back-off between failed receives, ms. */
  readonly retryDelay: { readonly min: number; readonly max: number };
  /** Messages a receive brought, in receive order. */
  readonly onMessages: (queue: Queue, messages: Message[]) => void;
  /** Messages a receive brought after the stop began: not delivered, only released at stop. */
  readonly onLate: (queue: Queue, messages: Message[]) => void;
}

/**
 * One long-poll loop on one queue, until `signal` aborts: it receives only while some function subscribes and the
 * engine has capacity; a failed receive is retried after a back-off (growing while failures are retryable; the
 * longest one after an error that cannot go away by itself, e.g. denied credentials or a deleted queue).
 */
export async function poll(o: PollerOptions, signal: AbortSignal): Promise<void> {
  const { client, queue, ctx, health, stats } = o;
  const backoff = new Backoff(o.retryDelay);
  const log = ctx.logger;
  while (!signal.aborted) {
    if (!o.subscribers.any) {
      await o.subscribers.wait(signal);
      continue;
    }
    await ctx.waitForCapacity(signal);
    if (signal.aborted) return;
    let messages: Message[];
    try {
      stats.receiveCalls++;
      const receive = new ReceiveMessageCommand({
        QueueUrl: queue.url,
        MaxNumberOfMessages: o.maxMessages,
        WaitTimeSeconds: o.waitTime,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
        // The same under its older name, which SQS still takes (deprecated) and which some emulators know alone:
        // without the system attributes a FIFO message has no MessageGroupId and would lose its group's order.
        AttributeNames: ['All'],
        ...(o.visibilityTimeout !== undefined ? { VisibilityTimeout: o.visibilityTimeout } : {}),
      });
      // By default a long poll is not aborted at stop: an abandoned one can still be handed messages by the server,
      // which then stay invisible for their whole visibility timeout. Stop waits for it (at most waitTime) instead,
      // unless abortPollOnStop. Without options (not even `{}`) the client reuses its cached middleware stack.
      const res = await (o.abortPollOnStop
        ? client.send(receive, { abortSignal: signal })
        : client.send(receive));
      messages = res.Messages ?? [];
    } catch (err) {
      if (signal.aborted) return;
      const e = sqsError(err, `ReceiveMessage on ${queue.name}`);
      health.down(e);
      const delay = e.canRetry ? backoff.next() : o.retryDelay.max;
      log[e.canRetry ? 'warn' : 'error'](
        { queue: queue.name, err: e.message, code: e.code, brokerCode: e.brokerCode, retryInMs: delay },
        'ReceiveMessage failed',
      );
      await sleep(delay, signal);
      continue;
    }
    health.up();
    backoff.reset();
    stats.received += messages.length;
    if (signal.aborted) o.onLate(queue, messages);
    else o.onMessages(queue, messages);
  }
}
