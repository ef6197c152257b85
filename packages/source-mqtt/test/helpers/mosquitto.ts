import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { waitFor } from './wait.js';

const explicit = process.env['MOSQUITTO_BIN'];
/** Path of the mosquitto binary (env MOSQUITTO_BIN, else PATH and the usual sbin folders), or undefined. */
export const MOSQUITTO: string | undefined = (
  explicit
    ? [explicit]
    : [
        ...(process.env['PATH'] ?? '').split(':').map((d) => join(d, 'mosquitto')),
        '/usr/sbin/mosquitto',
        '/usr/local/sbin/mosquitto',
        '/opt/homebrew/sbin/mosquitto',
      ]
).find((p) => p !== '' && existsSync(p));

if (MOSQUITTO === undefined && process.env['REQUIRE_MOSQUITTO'] === '1') {
  throw new Error(
    'REQUIRE_MOSQUITTO=1 but no mosquitto binary was found (PATH, /usr/sbin): install mosquitto',
  );
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ port, host: '127.0.0.1' });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
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
  const bin = MOSQUITTO;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mosq-'));
  const lines = [
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
  ];
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `${lines.join('\n')}\n`);
  let out = '';
  let proc: ChildProcess | undefined;

  const start = async () => {
    const p = spawn(bin, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = p;
    p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    let exited = false;
    p.once('exit', () => (exited = true));
    await waitFor(async () => exited || (await canConnect(port)), {
      timeout: 10_000,
      message: () => `mosquitto did not listen on ${port}: ${out}`,
    });
    if (exited) throw new Error(`mosquitto exited at start: ${out}`);
  };
  const halt = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
    });
  };
  await start();
  const scheme = options.scheme ?? 'mqtt';
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    dir,
    output: () => out,
    async restart() {
      await halt();
      await start();
    },
    halt,
    start,
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
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
