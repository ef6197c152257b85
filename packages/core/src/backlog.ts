import { Gauge, type Registry } from 'prom-client';
import { errorFields, RepeatLimiter } from './logger.js';
import type { Source } from './source.js';
import type { Logger } from './types.js';

/**
 * One backlog figure a source reads from its broker: messages waiting in what it consumes. Labels are bounded by
 * what the source consumes (its queues, topics, partitions), never by message content.
 */
export interface BacklogSample {
  /** What the backlog is of: the Kafka topic, the SQS or RabbitMQ queue, the JetStream `stream/consumer`. */
  readonly queue: string;
  /** Kafka partition, when the broker has partitions. */
  readonly partition?: number;
  /** `ready`: waiting to be handed out; `unacked`: handed to a consumer, not acknowledged yet. Absent: both
   * (Kafka lag: from the committed offset to the end). */
  readonly state?: 'ready' | 'unacked';
  /** Number of messages. */
  readonly value: number;
}

/** Default of `backlogInterval` (env `backlog_interval`), in ms. */
export const DEFAULT_BACKLOG_INTERVAL = 15_000;

/** The `connector_backlog_messages` gauge, in `registry`. */
export function backlogGauge(registry: Registry): Gauge<'source' | 'queue' | 'partition' | 'state'> {
  return new Gauge({
    name: 'connector_backlog_messages',
    help: 'Messages waiting at the broker for this connector (Kafka consumer lag, queue depth), last sample',
    labelNames: ['source', 'queue', 'partition', 'state'],
    registers: [registry],
  });
}

/**
 * Sample `source.backlog()` now and then every `interval` ms (never two at once) while `active()` holds, into the
 * gauge: each sample replaces the last one's series. A failed sample keeps the last values and logs a warning,
 * rate-limited (the 1st, 2nd, 4th... identical failure); it never stops the connector. Returns the stop function.
 */
export function sampleBacklog(opts: {
  source: Source;
  gauge: Gauge<'source' | 'queue' | 'partition' | 'state'>;
  interval: number;
  active: () => boolean;
  logger: Logger;
}): () => void {
  const { source, gauge, interval, logger } = opts;
  const read = source.backlog?.bind(source);
  if (read === undefined || interval <= 0) return () => undefined;
  const failures = new RepeatLimiter();
  let running = false;
  let stopped = false;
  const tick = async () => {
    if (running || stopped || !opts.active()) return;
    running = true;
    try {
      const samples = await read();
      if (stopped) return;
      gauge.reset();
      for (const s of samples) {
        const labels: Partial<Record<'source' | 'queue' | 'partition' | 'state', string>> = {
          source: source.name,
          queue: s.queue,
        };
        if (s.partition !== undefined) labels.partition = String(s.partition);
        if (s.state !== undefined) labels.state = s.state;
        gauge.set(labels, s.value);
      }
      failures.reset();
    } catch (err) {
      const { message, code } = errorFields(err);
      const n = failures.hit(message);
      if (n !== undefined)
        logger.warn(
          { ...(code === undefined ? {} : { code }), ...(n > 1 ? { repeated: n } : {}) },
          `backlog sample of source ${source.name} failed (last values kept): ${message}`,
        );
    } finally {
      running = false;
    }
  };
  void tick();
  const timer = setInterval(() => void tick(), interval);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
