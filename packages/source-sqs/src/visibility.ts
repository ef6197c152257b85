import { ChangeMessageVisibilityBatchCommand, ChangeMessageVisibilityCommand } from '@aws-sdk/client-sqs';
import type { Logger } from '@connector/core';
import { sqsError } from './errors.js';
import type { Queue, Received } from './queue.js';
import type { SqsStats } from './stats.js';
import type { SqsCalls } from './wire.js';

/** Entries per ChangeMessageVisibilityBatch call (the SQS limit). */
const BATCH = 10;

/**
 * A received message's visibility: heartbeats keep it invisible while its delivery runs (every half visibility
 * timeout, so no other consumer receives it mid-flight), `release` makes messages visible again at once.
 */
export class Visibility {
  constructor(
    private readonly client: SqsCalls,
    private readonly stats: SqsStats,
    private readonly log: Logger,
    /** Heartbeats on (the `heartbeat` option). */
    private readonly heartbeats: boolean,
  ) {}

  /** Start extending `m`'s visibility (not when heartbeats are off, or its queue's timeout is unknown or < 2 s). */
  watch(m: Received): void {
    const vt = m.queue.visibility;
    if (!this.heartbeats || vt === undefined || vt < 2) return;
    m.heartbeat = setInterval(() => this.extend(m, vt), (vt * 1000) / 2);
  }

  /** Stop extending `m`'s visibility. */
  unwatch(m: Received): void {
    clearInterval(m.heartbeat);
    m.heartbeat = undefined;
  }

  /** Make messages visible again at once (ChangeMessageVisibilityBatch to 0); failures are logged, never thrown. */
  async release(items: readonly Received[]): Promise<void> {
    const byQueue = new Map<Queue, Received[]>();
    for (const m of items) {
      this.unwatch(m);
      const list = byQueue.get(m.queue) ?? [];
      list.push(m);
      byQueue.set(m.queue, list);
    }
    const calls: Promise<void>[] = [];
    for (const [queue, list] of byQueue)
      for (let i = 0; i < list.length; i += BATCH)
        calls.push(this.releaseBatch(queue, list.slice(i, i + BATCH)));
    await Promise.all(calls);
  }

  private async releaseBatch(queue: Queue, chunk: Received[]): Promise<void> {
    try {
      const res = await this.client.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queue.url,
          Entries: chunk.map((m, i) => ({ Id: String(i), ReceiptHandle: m.receipt, VisibilityTimeout: 0 })),
        }),
      );
      this.stats.released += res.Successful?.length ?? 0;
    } catch (err) {
      this.log.warn(
        { queue: queue.name, err: sqsError(err, `ChangeMessageVisibilityBatch on ${queue.name}`).message },
        'could not release messages; they reappear after their visibility timeout',
      );
    }
  }

  private extend(m: Received, seconds: number): void {
    this.client
      .send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: m.queue.url,
          ReceiptHandle: m.receipt,
          VisibilityTimeout: seconds,
        }),
      )
      .then(
        () => void this.stats.extended++,
        (err: unknown) =>
          this.log.warn(
            { queue: m.queue.name, err: sqsError(err, `ChangeMessageVisibility on ${m.queue.name}`).message },
            'visibility heartbeat failed',
          ),
      );
  }
}
