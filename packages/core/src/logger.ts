import { createRequire } from 'node:module';
import pino from 'pino';
import type { LogLevel } from './config.js';
import { redactSecrets } from './secrets.js';
import type { Logger } from './types.js';

const noop = () => undefined;

/** A logger that discards everything (the default of library APIs). */
export const noopLogger: Logger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  fatal: noop,
  child: () => noopLogger,
};

/** Options of `createLogger`. */
export interface LoggerOptions {
  /** Minimum level (default `info`). */
  level?: LogLevel;
  /** Logger name (the connector). */
  name?: string;
  /** Human-readable output (default: when stdout is a TTY); JSON lines otherwise. */
  pretty?: boolean;
  /** Where JSON lines go (default stdout); for tests. */
  destination?: NodeJS.WritableStream;
}

/** Paths redacted from every log line, so secrets never reach a log. */
export const REDACT = [
  'password',
  'credentials',
  'authorization',
  'headers.authorization',
  '*.password',
  '*.authorization',
];

/**
 * A pino logger: JSON lines, pretty when stdout is a TTY; secrets redacted — by field (`REDACT`), and by value in
 * every line at every level: each secret read through `readSecret`/`registerSecret` and every URL password.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const base = {
    level: options.level ?? 'info',
    redact: { paths: REDACT, censor: '[redacted]' },
    hooks: { streamWrite: redactSecrets },
    ...(options.name === undefined ? {} : { name: options.name }),
  };
  const pretty = options.pretty ?? (options.destination === undefined && process.stdout.isTTY === true);
  if (pretty) {
    const require = createRequire(import.meta.url);
    const prettyFactory = require('pino-pretty') as (o: object) => NodeJS.WritableStream;
    return pino(
      base,
      prettyFactory({ colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' }),
    ) as Logger;
  }
  return (options.destination ? pino(base, options.destination) : pino(base)) as Logger;
}

/**
 * Rate limit for a failure that repeats identically (a broker down, retried every few seconds): `hit` says whether
 * to log this occurrence — the 1st, 2nd, 4th, 8th... of the same key — and with which count.
 */
export class RepeatLimiter {
  private key: string | undefined;
  private count = 0;

  /** The occurrence count when this one should be logged, else undefined. A different key starts over. */
  hit(key: string): number | undefined {
    if (key !== this.key) {
      this.key = key;
      this.count = 0;
    }
    this.count++;
    return (this.count & (this.count - 1)) === 0 ? this.count : undefined;
  }

  /** Forget the failure (it was resolved). */
  reset(): void {
    this.key = undefined;
    this.count = 0;
  }
}

/** What one log line says about an error: its message and code, never its stack (log `{ err }` at debug). */
export function errorFields(err: unknown): { message: string; code?: string } {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { message?: unknown; code?: unknown };
  const message =
    typeof e.message === 'string' && e.message !== '' ? e.message.replace(/\s*\n\s*/g, ' ') : String(err);
  return typeof e.code === 'string' || typeof e.code === 'number'
    ? { message, code: String(e.code) }
    : { message };
}
