import { ConfigError, defineSource, isShutdownError, type Source, type SourceContext } from '@connector/core';

/** Options of the placeholder source: replace them with your broker's (URL, credentials, topics, group, ...). */
export interface ExampleSourceOptions {
  /** Topic of the messages it emits. */
  topic: string;
  /** Emit a message every `interval` ms. */
  interval: number;
}

/**
 * A placeholder source: it emits a message every `interval` ms so the new connector works at once. Replace the body
 * with your broker's client, keeping the contract:
 *
 * 1. `start(ctx)`: connect, then for each message call `ctx.deliver({ topic, body, headers?, id?, orderingKey? })`.
 * 2. Ack to the broker **only** when the returned outcome has `ack: true`; when `deliver` rejects with a ShutdownError
 *    (`isShutdownError(err)`), do not ack: the broker redelivers. That is the at-least-once guarantee.
 * 3. Pull brokers poll only while `ctx.hasCapacity()` (or `await ctx.waitForCapacity(ctx.signal)`): backpressure.
 * 4. Subscribe to `ctx.topics()` and follow `ctx.onTopicsChange(...)` if the functions' annotations choose topics.
 * 5. On a connection you cannot recover, call `ctx.fail(err)`: the connector restarts the source with back-off.
 * 6. `stop()`: stop taking messages, wait for in-flight `deliver` calls, ack what settled, disconnect.
 */
export const exampleSource = defineSource((options: ExampleSourceOptions): Source => {
  if (!Number.isFinite(options.interval) || options.interval < 1) {
    throw new ConfigError(
      'interval',
      `invalid interval=${options.interval}: expected a positive number of milliseconds`,
    );
  }
  let timer: NodeJS.Timeout | undefined;
  const inflight = new Set<Promise<void>>();
  let connected = false;
  let seq = 0;

  const receive = (ctx: SourceContext) => {
    if (!ctx.hasCapacity()) return; // backpressure: leave the message at the broker for now
    const id = String(++seq);
    const p = ctx
      .deliver({ topic: options.topic, body: new TextEncoder().encode(`message ${id}`), id })
      .then(
        (outcome) => {
          if (outcome.ack) {
            // TODO: ack the message to your broker here (commit offset, PUBACK, DeleteMessage, ...).
          } else {
            // TODO: leave it un-acked (or nack it) so the broker redelivers it.
          }
        },
        (err: unknown) => {
          if (!isShutdownError(err)) ctx.logger.error({ err }, 'delivery failed');
          // ShutdownError: not settled, do not ack.
        },
      )
      .finally(() => inflight.delete(p));
    inflight.add(p);
  };

  return {
    name: 'example',
    async start(ctx) {
      connected = true; // TODO: connect to your broker
      timer = setInterval(() => receive(ctx), options.interval);
    },
    async stop() {
      if (timer) clearInterval(timer);
      await Promise.allSettled([...inflight]);
      connected = false; // TODO: disconnect
    },
    health: () => ({ connected }),
  };
});
