import { ChangeMessageVisibilityBatchCommand } from '@aws-sdk/client-sqs';
import type { Logger } from '@connector/core';
import { sqsError } from './errors.js';
import type { Heartbeat, Queue, Received } from './queue.js';
import type { SqsStats } from './stats.js';
import type { SqsCalls } from './wire.js';

/** Entries per ChangeMessageVisibilityBatch call (the SQS limit). */
const BATCH = 10;

/**
 * Received messages' visibility: heartbeats keep them invisible while their deliveries run (every half visibility
 * timeout, so no other consumer receives them mid-flight), `release` makes messages visible again at once. The
 * messages of one receive share one heartbeat: one timer, and at each beat one ChangeMessageVisibilityBatch for those
 * still running (10 to a call), not one timer and one call per message.
 */
export class Visibility {
  constructor(
    private readonly client: SqsCalls,
    private readonly stats: SqsStats,
    private readonly log: Logger,
    /** Heartbeats on (the `heartbeat` option). */
    private readonly heartbeats: boolean,
  ) {}

  /** Start extending the visibility of `received`, the messages of one receive on `queue` (not when heartbeats are
   * off, or the queue's timeout is unknown or < 2 s). */
  watch(queue: Queue, received: readonly Received[]): void {
    const vt = queue.visibility;
    if (!this.heartbeats || vt === undefined || vt < 2 || received.length === 0) return;
    const beat: Heartbeat = {
      live: new Set(received),
      timer: setInterval(() => this.extend(queue, beat, vt), (vt * 1000) / 2),
    };
    for (const m of received) m.heartbeat = beat;
  }

  /** Stop extending `m`'s visibility (its heartbeat ends with the last message of its receive). */
  unwatch(m: Received): void {
    const beat = m.heartbeat;
    if (beat === undefined) return;
    m.heartbeat = undefined;
    beat.live.delete(m);
    if (beat.live.size === 0) clearInterval(beat.timer);
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
      const res = await this.change(queue, chunk, 0);
      this.stats.released += res.Successful?.length ?? 0;
    } catch (err) {
      this.log.warn(
        { queue: queue.name, err: sqsError(err, `ChangeMessageVisibilityBatch on ${queue.name}`).message },
        'could not release messages; they reappear after their visibility timeout',
      );
    }
  }

  /** One ChangeMessageVisibilityBatch: `chunk` (at most 10, entry ids their indexes) invisible for `seconds`. */
  private change(queue: Queue, chunk: readonly Received[], seconds: number) {
    return this.client.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queue.url,
        Entries: chunk.map((m, i) => ({
          Id: String(i),
          ReceiptHandle: m.receipt,
          VisibilityTimeout: seconds,
        })),
      }),
    );
  }

  /** One beat: the messages still running, extended by `seconds` from now. */
  private extend(queue: Queue, beat: Heartbeat, seconds: number): void {
    const running = [...beat.live];
    for (let i = 0; i < running.length; i += BATCH)
      void this.extendBatch(queue, beat, running.slice(i, i + BATCH), seconds);
  }

  private async extendBatch(
    queue: Queue,
    beat: Heartbeat,
    chunk: Received[],
    seconds: number,
  ): Promise<void> {
    try {
      const res = await this.change(queue, chunk, seconds);
      this.stats.extended += res.Successful?.length ?? 0;
      // An entry may fail because its message settled (and was deleted) meanwhile: only running ones are news.
      const failed = (res.Failed ?? []).filter((f) => {
        const m = chunk[Number(f.Id)];
        return m !== undefined && beat.live.has(m);
      });
      if (failed.length > 0)
        this.log.warn(
          {
            queue: queue.name,
            count: failed.length,
            reason: failed.map((f) => `${f.Code ?? 'error'}: ${f.Message ?? ''}`.trim()),
          },
          'visibility heartbeat failed for messages still running; SQS may deliver them again',
        );
    } catch (err) {
      this.log.warn(
        { queue: queue.name, err: sqsError(err, `ChangeMessageVisibilityBatch on ${queue.name}`).message },
        'visibility heartbeat failed',
      );
    }
  }
}
