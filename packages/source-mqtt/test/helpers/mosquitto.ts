import { findExecutable, startServerProcess } from '@connector/testing';
import { expect, it } from 'vitest';

export { freePort } from '@connector/testing';

/** Path of the mosquitto binary (env MOSQUITTO_BIN, else PATH and the usual sbin folders), or undefined. */
export const MOSQUITTO: string | undefined = findExecutable(process.env['MOSQUITTO_BIN'] || 'mosquitto');

if (MOSQUITTO === undefined && process.env['REQUIRE_MOSQUITTO'] === '1') {
  throw new Error(
    'REQUIRE_MOSQUITTO=1 but no mosquitto binary was found (PATH, /usr/sbin): install mosquitto',
  );
}

/** Options of `startMosquitto`. */
export interface MosquittoOptions {
  /** Extra global config lines (password_file, max_queued_messages, ...). */
  config?: string;
  /** Extra lines for the listener (cafile, certfile, keyfile, protocol websockets, ...). */
  listener?: string;
  /** Allow anonymous clients (default true). */
  anonymous?: boolean;
  /** URL scheme of `url` (default mqtt). */
  scheme?: 'mqtt' | 'mqtts' | 'ws' | 'wss';
}

/** A private mosquitto on a free loopback port, with persistence in a temp dir (sessions survive restart()). */
export interface Mosquitto {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Everything mosquitto wrote to stdout/stderr. */
  output(): string;
  /** Graceful stop (SIGTERM; the session database is saved), then start again on the same port. */
  restart(): Promise<void>;
  /** Stop the broker only (for down-time tests); `start()` brings it back. */
  halt(): Promise<void>;
  /** Start after `halt()`. */
  start(): Promise<void>;
  /** Stop and remove the temp dir. */
  stop(): Promise<void>;
}

/** Start a private mosquitto (`mosquitto -c <tmpfile>`) on a free port of 127.0.0.1. */
export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  if (MOSQUITTO === undefined) throw new Error('mosquitto is not installed');
  const server = await startServerProcess({
    command: MOSQUITTO,
    prefix: 'mosq-',
    configName: 'mosquitto.conf',
    config: ({ port, dir }) =>
      [
        ...(process.getuid?.() === 0 ? ['user root'] : []),
        'persistence true',
        `persistence_location ${dir}/`,
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        `allow_anonymous ${options.anonymous === false ? 'false' : 'true'}`,
        options.config ?? '',
        `listener ${port} 127.0.0.1`,
        options.listener ?? '',
        '',
      ].join('\n'),
  });
  return {
    url: `${options.scheme ?? 'mqtt'}://127.0.0.1:${server.port}`,
    port: server.port,
    dir: server.dir,
    output: server.output,
    restart: server.restart,
    halt: server.kill,
    start: server.start,
    stop: server.stop,
  };
}

/** Register one test that says plainly which cases did not run because mosquitto is missing. */
export function reportMissingMosquitto(what: string): void {
  const line = `mosquitto is not installed: ${what} do not run (REQUIRE_MOSQUITTO=1 makes this an error)`;
  console.warn(line);
  it(line, () => {
    expect(MOSQUITTO).toBeUndefined();
  });
}
