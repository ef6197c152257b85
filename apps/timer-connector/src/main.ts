#!/usr/bin/env node
import {
  type CliIo,
  type Connector,
  connectorCli,
  type Env,
  isEntryPoint,
  type Logger,
} from '@connector/core';
import { otlpTracing } from '@connector/otel';
import { startTimerConnector, TIMER_SETTINGS } from './app.js';

/** Options of `main` besides the environment (tests turn signal handling off and pass a logger). */
export interface MainOptions {
  /** Handle SIGTERM/SIGINT: drain, then exit 0 (default true). */
  signals?: boolean;
  /** Logger (default: pino at env `log_level`). */
  logger?: Logger;
}

/**
 * Run the timer connector configured by `env`: every `@connector/core` variable (`configFromEnv`) plus `mode`
 * (`cron` | `interval`), `topic`, `interval`, `body`, `timezone`. Rejects with a one-line ConfigError on bad input.
 */
export function main(env: Env = process.env, options: MainOptions = {}): Promise<Connector> {
  return startTimerConnector({ env, ...options });
}

/** What a failed start prints (one line, no stack trace) and its exit code: 2 for invalid configuration, else 1. */
export function startupFailure(err: unknown): { line: string; exitCode: number } {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; message?: unknown };
  const message =
    typeof e.message === 'string' && e.message.trim() !== ''
      ? e.message
      : typeof e.code === 'string'
        ? e.code
        : String(err);
  return {
    line: `timer-connector: ${message.trim().replace(/\s*\n\s*/g, ' ')}\n`,
    exitCode: e.code === 'ERR_CONFIG' ? 2 : 1,
  };
}

/** Print `startupFailure(err)` to stderr and exit with its code (what `node dist/main.js` does on failure). */
export function exitOnStartupFailure(err: unknown): void {
  const { line, exitCode } = startupFailure(err);
  process.stderr.write(line);
  process.exit(exitCode);
}

/** The command line: `--help` lists the settings; otherwise `main()`, exit 2 on bad configuration (one line). */
export function cli(
  argv: readonly string[] = process.argv.slice(2),
  io?: Partial<CliIo>,
): Promise<Connector | undefined> {
  return connectorCli({
    name: 'timer-connector',
    settings: TIMER_SETTINGS,
    argv,
    tracing: otlpTracing,
    start: () => main(),
    ...(io ? { io } : {}),
  });
}

if (isEntryPoint(import.meta.url)) void cli();
