import { GetQueueAttributesCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import type { Logger } from '@connector/core';
import { sqsError } from './errors.js';
import type { SqsCalls } from './wire.js';

/** A queue the source consumes, resolved at start. */
export interface Queue {
  /** Queue URL (every call takes it). */
  readonly url: string;
  /** Queue name: the default topic. */
  readonly name: string;
  /** A FIFO queue (name ends in `.fifo`): message groups are delivered in order (with `ordering: 'key'`). */
  readonly fifo: boolean;
  /** Visibility timeout in seconds, when known (the option, else the queue's attribute): heartbeats need it. */
  readonly visibility: number | undefined;
}

/** A message received and not settled yet: what deleting, extending or releasing it takes. */
export interface Received {
  readonly queue: Queue;
  readonly receipt: string;
  /** The visibility heartbeat while the delivery runs: one for the messages of one receive (`Visibility.watch`). */
  heartbeat: Heartbeat | undefined;
}

/** One visibility heartbeat: the messages of one receive still running, and the timer that extends them. */
export interface Heartbeat {
  readonly live: Set<Received>;
  readonly timer: NodeJS.Timeout;
}

/**
 * The queue's depth from GetQueueAttributes: `ApproximateNumberOfMessages` (ready) and
 * `ApproximateNumberOfMessagesNotVisible` (received, not deleted yet: unacked). Rejects with a `BrokerError`.
 */
export async function queueDepth(
  client: SqsCalls,
  queue: Queue,
): Promise<{ ready: number; unacked: number }> {
  try {
    const res = await client.send(
      new GetQueueAttributesCommand({
        QueueUrl: queue.url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    const count = (name: 'ApproximateNumberOfMessages' | 'ApproximateNumberOfMessagesNotVisible') => {
      const n = Number(res.Attributes?.[name]);
      return Number.isFinite(n) ? n : 0;
    };
    return {
      ready: count('ApproximateNumberOfMessages'),
      unacked: count('ApproximateNumberOfMessagesNotVisible'),
    };
  } catch (err) {
    throw sqsError(err, `GetQueueAttributes ${queue.name}`);
  }
}

/**
 * A queue name or URL → its URL (GetQueueUrl for a name), name, FIFO flag and visibility timeout (`visibility` when
 * given, else GetQueueAttributes; without the permission for that, none: the source then runs without heartbeats).
 * Errors are normalised (`sqsError`): a queue that does not exist or denied credentials fail the start.
 */
export async function resolveQueue(
  client: SqsCalls,
  queue: string,
  visibility: number | undefined,
  log: Logger,
): Promise<Queue> {
  let url = queue;
  if (!/^https?:\/\//.test(queue)) {
    try {
      url = (await client.send(new GetQueueUrlCommand({ QueueName: queue }))).QueueUrl ?? queue;
    } catch (err) {
      throw sqsError(err, `GetQueueUrl ${queue}`);
    }
  }
  const name = url.split('/').pop() ?? queue;
  if (visibility === undefined) {
    try {
      const attrs = await client.send(
        new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['VisibilityTimeout'] }),
      );
      const v = Number(attrs.Attributes?.['VisibilityTimeout']);
      visibility = Number.isFinite(v) ? v : undefined;
    } catch (err) {
      const e = sqsError(err, `GetQueueAttributes ${name}`);
      if (e.code !== 'ERR_BROKER_AUTH') throw e;
      // Without sqs:GetQueueAttributes the queue's visibility timeout is unknown: run without heartbeats.
      log.warn(
        { queue: name, err: e.message },
        'cannot read the queue visibility timeout (sqs:GetQueueAttributes denied): no visibility heartbeats; set visibility_timeout',
      );
    }
  }
  return { url, name, fifo: name.endsWith('.fifo'), visibility };
}
