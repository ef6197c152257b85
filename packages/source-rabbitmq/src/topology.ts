import type { Channel, ChannelModel } from 'amqplib';
import { amqpError } from './errors.js';
import type { ResolvedQueue, ResolvedRabbitmqOptions } from './options.js';

/** Run `work` on a channel of its own: a refused declaration or binding closes that channel, never the consumer's. */
async function onChannel<T>(
  connection: ChannelModel,
  what: string,
  work: (ch: Channel) => Promise<T>,
): Promise<T> {
  let ch: Channel | undefined;
  try {
    ch = await connection.createChannel();
    ch.on('error', () => undefined); // the failed call rejects with the same error
    return await work(ch);
  } catch (err) {
    throw amqpError(err, what);
  } finally {
    await ch?.close().catch(() => undefined);
  }
}

/**
 * Declare what the source consumes: the topic exchange (or check that it exists: `amq.*`, or `declareExchange:
 * false`), the dead-letter exchange (checked, never declared: its type and bindings are the operator's), and every
 * queue with its arguments. A queue that exists with other arguments fails with PRECONDITION_FAILED.
 */
export async function declareTopology(connection: ChannelModel, o: ResolvedRabbitmqOptions): Promise<void> {
  if (o.queues.some((q) => q.bound)) {
    await onChannel(connection, `declaring exchange ${o.exchange}`, (ch) =>
      o.declareExchange
        ? ch.assertExchange(o.exchange, 'topic', { durable: true })
        : ch.checkExchange(o.exchange),
    );
  }
  const dlx = o.deadLetterExchange;
  if (dlx !== undefined)
    await onChannel(
      connection,
      `checking dead-letter exchange ${dlx} (declare it and bind a queue to it)`,
      (ch) => ch.checkExchange(dlx),
    );
  for (const q of o.queues) await declareQueue(connection, q);
}

function declareQueue(connection: ChannelModel, q: ResolvedQueue) {
  return onChannel(connection, `declaring queue ${q.name}`, (ch) =>
    ch.assertQueue(q.name, {
      durable: q.durable,
      autoDelete: q.autoDelete,
      exclusive: q.exclusive,
      arguments: q.arguments,
    }),
  );
}

/** Messages ready in each queue (`checkQueue`'s messageCount: not yet delivered to a consumer), in order. */
export async function queueDepths(connection: ChannelModel, queues: readonly string[]): Promise<number[]> {
  return onChannel(connection, `checking queues ${queues.join(', ')}`, async (ch) => {
    const out: number[] = [];
    for (const q of queues) out.push((await ch.checkQueue(q)).messageCount);
    return out;
  });
}

/** What a binding sync did. */
export interface BindingChanges {
  added: string[];
  removed: string[];
}

/**
 * Bring the queue's bindings on `exchange` in line with `want`: bind every wanted key (idempotent at the broker, so
 * a queue recreated meanwhile gets them back), then unbind the keys in `bound` that are no longer wanted. `bound`
 * (the keys this process bound) is updated as each call succeeds.
 */
export function syncBindings(
  connection: ChannelModel,
  queue: string,
  exchange: string,
  want: readonly string[],
  bound: Set<string>,
): Promise<BindingChanges> {
  return onChannel(connection, `binding queue ${queue} to ${exchange}`, async (ch) => {
    const added: string[] = [];
    const removed: string[] = [];
    for (const key of want) {
      await ch.bindQueue(queue, exchange, key);
      if (!bound.has(key)) added.push(key);
      bound.add(key);
    }
    for (const key of [...bound]) {
      if (want.includes(key)) continue;
      await ch.unbindQueue(queue, exchange, key);
      bound.delete(key);
      removed.push(key);
    }
    return { added, removed };
  });
}
