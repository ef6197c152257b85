import { type Env, EnvReader, type Source } from '@connector/core';
import { cronSource } from './cron.js';
import { intervalSource } from './interval.js';

/** What `timerSourceFromEnv` read. */
export interface TimerEnvOptions {
  mode: 'cron' | 'interval';
  topic: string;
  interval?: number;
  body?: string;
  timezone?: string;
}

/**
 * Build the timer app's source from env: `mode=cron|interval` (default cron), `topic` (default `cron-function`
 * for cron), `interval` (Go duration, interval mode), `body`, `timezone`. Throws a one-line ConfigError.
 */
export function timerSourceFromEnv(env: Env = process.env): { source: Source; options: TimerEnvOptions } {
  const r = new EnvReader(env);
  const mode = r.oneOf('mode', ['cron', 'interval'] as const) ?? 'cron';
  const timezone = r.string('timezone');
  if (timezone !== undefined) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: timezone });
    } catch {
      r.fail('timezone', timezone, 'an IANA timezone like Europe/Berlin');
    }
  }
  if (mode === 'cron') {
    const topic = r.string('topic') ?? 'cron-function';
    const options = { mode, topic, ...(timezone ? { timezone } : {}) } satisfies TimerEnvOptions;
    return { source: cronSource({ topic, ...(timezone ? { timezone } : {}) }), options };
  }
  const interval =
    r.duration('interval', { min: 1 }) ??
    r.fail('interval', '', 'a duration like 10s (required with mode=interval)');
  const topic = r.string('topic') ?? r.fail('topic', '', 'a topic name (required with mode=interval)');
  const body = r.string('body');
  const options: TimerEnvOptions = { mode, topic, interval, ...(body !== undefined ? { body } : {}) };
  return { source: intervalSource({ interval, topic, ...(body !== undefined ? { body } : {}) }), options };
}
