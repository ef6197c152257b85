import {
  ConfigError,
  defineSource,
  HealthState,
  InFlight,
  type Source,
  type SourceContext,
  settleDelivery,
} from '@connector/core';

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
 * 2. Ack to the broker **only** on `settleDelivery(ctx.deliver(m))` === 'ack'; on 'nack' let the broker redeliver;
 *    on 'shutdown' (the connector stopped first) do nothing: the broker redelivers. That is at-least-once.
 * 3. Pull brokers poll only while `ctx.hasCapacity()` (or `await ctx.waitForCapacity(ctx.signal)`): backpressure.
 * 4. Subscribe to `ctx.topics()` and follow `ctx.onTopicsChange(...)` if the functions' annotations choose topics.
 * 5. On a connection you cannot recover, call `ctx.fail(err)`: the connector restarts the source with back-off.
 * 6. `stop()`: stop taking messages, wait for in-flight `deliver` calls (`InFlight.idle()`), ack what settled,
 *    disconnect. Core's source kit also has `sleep`, `Backoff`, `HealthState` and `brokerError`: use them.
 * 7. Optional `backlog()`: what waits at the broker (lag, queue depth), read from it; the connector samples it every
 *    `backlog_interval` into `connector_backlog_messages` for autoscaling (core README, Autoscaling).
 */
export const exampleSource = defineSource((options: ExampleSourceOptions): Source => {
  if (!Number.isFinite(options.interval) || options.interval < 1)
    throw ConfigError.invalid('interval', options.interval, 'a positive number of milliseconds');
  let timer: NodeJS.Timeout | undefined;
  const inflight = new InFlight();
  const health = new HealthState();
  let seq = 0;

  const receive = (ctx: SourceContext) => {
    if (!ctx.hasCapacity()) return; // backpressure: leave the message at the broker for now
    const id = String(++seq);
    const delivery = ctx.deliver({
      topic: options.topic,
      body: new TextEncoder().encode(`message ${id}`),
      id,
    });
    inflight.track(
      settleDelivery(delivery, (err) => ctx.logger.error({ err: String(err) }, 'delivery failed')).then(
        (decision) => {
          if (decision === 'ack') {
            // TODO: ack the message to your broker here (commit offset, PUBACK, DeleteMessage, ...).
          } else if (decision === 'nack') {
            // TODO: leave it un-acked (or nack it) so the broker redelivers it.
          } // 'shutdown': not settled, do nothing.
        },
      ),
    );
  };

  return {
    name: 'example',
    async start(ctx) {
      health.up(); // TODO: connect to your broker
      timer = setInterval(() => receive(ctx), options.interval);
    },
    async stop() {
      if (timer) clearInterval(timer);
      await inflight.idle();
      health.down(); // TODO: disconnect
    },
    health: () => health.snapshot(),
  };
});
