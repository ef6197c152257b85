#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Connector, Env, Logger } from '@connector/core';
import { startTimerConnector } from './app.js';

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

/** True when this module is the process's entry point (`node dist/main.js`), false when it is imported. */
function isEntryPoint(): boolean {
  const argv1 = process.argv[1];
  if (argv1 === undefined) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) main().catch(exitOnStartupFailure);
