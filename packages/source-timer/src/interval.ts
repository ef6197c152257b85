import {
  ConfigError,
  defineSource,
  errorMessage,
  type Source,
  type SourceContext,
  settleDelivery,
} from '@connector/core';

/** Options of `intervalSource`. */
export interface IntervalSourceOptions {
  /** Period in milliseconds (>= 1). */
  interval: number;
  /** Topic of every message. */
  topic: string;
  /** Message body (default: the ISO time of the tick); a function is called per tick. */
  body?: string | Uint8Array | (() => string | Uint8Array);
  /** Extra headers of every message. */
  headers?: Readonly<Record<string, string>>;
  /** Emit a first tick at start instead of after one interval (default false). */
  immediate?: boolean;
}

/** A source that emits a message on `topic` every `interval` ms (the Go SDK's "tester"). */
export interface IntervalSource extends Source {
  /** Ticks emitted so far. */
  readonly ticks: number;
  /** Ticks skipped because the previous delivery had not settled. */
  readonly skipped: number;
}

const encoder = new TextEncoder();

/** Emit a message every interval; a tick whose predecessor has not settled is skipped, never queued. */
export const intervalSource = defineSource((options: IntervalSourceOptions): IntervalSource => {
  if (!Number.isFinite(options.interval) || options.interval < 1)
    throw ConfigError.invalid('interval', options.interval, 'a positive number of milliseconds');
  if (typeof options.topic !== 'string' || options.topic.trim() === '')
    throw ConfigError.invalid('topic', options.topic, 'a non-empty topic');
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let ticks = 0;
  let skipped = 0;
  let ctx: SourceContext | undefined;

  const payload = (): Uint8Array => {
    const b =
      typeof options.body === 'function' ? options.body() : (options.body ?? new Date().toISOString());
    return typeof b === 'string' ? encoder.encode(b) : b;
  };

  const tick = (c: SourceContext) => {
    if (current) {
      skipped++;
      c.logger.debug({ topic: options.topic, skipped }, 'previous tick not settled; tick skipped');
      return;
    }
    ticks++;
    const delivery = c.deliver({
      topic: options.topic,
      body: payload(),
      id: `tick-${ticks}`,
      ...(options.headers ? { headers: options.headers } : {}),
    });
    current = settleDelivery(delivery, (err) =>
      c.logger.error({ err: errorMessage(err) }, 'tick delivery failed'),
    ).then(() => {
      current = undefined;
    });
  };

  return {
    name: 'timer',
    get ticks() {
      return ticks;
    },
    get skipped() {
      return skipped;
    },
    async start(c) {
      ctx = c;
      timer = setInterval(() => tick(c), options.interval);
      if (options.immediate) tick(c);
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await current;
      ctx = undefined;
    },
    health: () => ({ connected: ctx !== undefined }),
  };
});
