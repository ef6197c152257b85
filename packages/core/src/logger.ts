import { createRequire } from 'node:module';
import pino from 'pino';
import type { LogLevel } from './config.js';
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

/** A pino logger: JSON lines, pretty when stdout is a TTY; secrets redacted. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const base = {
    level: options.level ?? 'info',
    redact: { paths: REDACT, censor: '[redacted]' },
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
