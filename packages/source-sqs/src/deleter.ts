import { DeleteMessageBatchCommand } from '@aws-sdk/client-sqs';
import { Backoff, errorMessage, type HealthState, InFlight, type Logger, sleep } from '@connector/core';
import { sqsError } from './errors.js';
import type { Queue, Received } from './queue.js';
import type { SqsStats } from './stats.js';
import type { SqsCalls } from './wire.js';

/** Entries per DeleteMessageBatch call (the SQS limit). */
const BATCH = 10;
/** How long a delete waits for others to share its call, in ms. */
const GATHER_MS = 20;
/** Tries per entry before giving up (SQS then redelivers the message: at-least-once). */
const ATTEMPTS = 3;

/**
 * Deletes acked messages in DeleteMessageBatch calls per queue (up to 10, or what gathered within 20 ms); entries
 * that fail (the whole call, or `Failed` entries of a partial answer) are retried with a back-off, then given up.
 */
export class Deleter {
  private readonly pending = new Map<Queue, Received[]>();
  private readonly flushes = new InFlight();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: SqsCalls,
    private readonly stats: SqsStats,
    private readonly health: HealthState,
    private readonly log: Logger,
  ) {}

  /** Queue `m` for deletion. */
  delete(m: Received): void {
    const list = this.pending.get(m.queue) ?? [];
    list.push(m);
    this.pending.set(m.queue, list);
    if (list.length >= BATCH) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), GATHER_MS);
  }

  /** Send what is queued now; resolves when those calls (and their retries) ended. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batches = [...this.pending];
    this.pending.clear();
    const calls: Promise<void>[] = [];
    for (const [queue, items] of batches)
      for (let i = 0; i < items.length; i += BATCH) calls.push(this.send(queue, items.slice(i, i + BATCH)));
    return this.flushes.track(Promise.all(calls).then(() => undefined));
  }

  /** Flush, then wait for every delete call still running (for `stop()`). */
  async idle(): Promise<void> {
    await this.flush();
    await this.flushes.idle();
  }

  private async send(queue: Queue, chunk: Received[]): Promise<void> {
    const backoff = new Backoff({ min: 200, max: 1000 });
    for (let attempt = 1; ; attempt++) {
      let failed: Received[];
      let reason: unknown;
      try {
        const res = await this.client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queue.url,
            Entries: chunk.map((m, i) => ({ Id: String(i), ReceiptHandle: m.receipt })),
          }),
        );
        this.stats.deleted += res.Successful?.length ?? 0;
        failed = (res.Failed ?? []).map((f) => chunk[Number(f.Id)]).filter((m) => m !== undefined);
        reason = res.Failed?.map((f) => `${f.Code ?? 'error'}: ${f.Message ?? ''}`.trim());
      } catch (err) {
        failed = chunk;
        reason = errorMessage(sqsError(err, `DeleteMessageBatch on ${queue.name}`));
      }
      if (failed.length === 0) return;
      if (attempt >= ATTEMPTS) {
        this.stats.deleteFailures += failed.length;
        this.health.failed(`DeleteMessageBatch on ${queue.name}: ${String(reason)}`);
        this.log.warn(
          { queue: queue.name, count: failed.length, reason },
          'delete failed; SQS will redeliver those messages',
        );
        return;
      }
      this.stats.deleteRetries += failed.length;
      this.log.info({ queue: queue.name, count: failed.length, attempt, reason }, 'delete failed; retrying');
      await sleep(backoff.next());
      chunk = failed;
    }
  }
}
