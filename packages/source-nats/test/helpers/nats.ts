import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@connector/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';

/** Path of the nats-server binary (env NATS_SERVER_BIN, else PATH and /usr/sbin). */
export const NATS_SERVER: string =
  [
    process.env['NATS_SERVER_BIN'] ?? '',
    ...(process.env['PATH'] ?? '').split(':').map((d) => join(d, 'nats-server')),
    '/usr/sbin/nats-server',
    '/usr/local/bin/nats-server',
  ].find((p) => p !== '' && existsSync(p)) ?? 'nats-server';

/** The shared NATS server of this machine and CI (`.ci/run` starts it). */
export const SHARED_NATS_URL = process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222';

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

/** A private `nats-server -js` on a free loopback port with its own store dir. */
export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** Stop the process (SIGTERM, SIGKILL after 5 s); the store dir stays (for `start()` again). */
  kill(): Promise<void>;
  /** Start it again on the same port and store dir. */
  start(): Promise<void>;
  /** Stop it and delete the store dir. */
  stop(): Promise<void>;
}

/** Start a private JetStream server; `config` adds lines to its config file (authorization, tls, ...). */
export async function startNatsServer(options: { config?: string } = {}): Promise<NatsServer> {
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), 'nats-test-'));
  const conf = join(storeDir, 'server.conf');
  writeFileSync(conf, `${options.config ?? ''}\n`);
  let proc: ChildProcess | undefined;
  const start = async () => {
    const p = spawn(
      NATS_SERVER,
      ['-c', conf, '-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(storeDir, 'js')],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    proc = p;
    let stderr = '';
    p.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    await waitFor(async () => p.exitCode === null && (await canConnect(port)), {
      timeout: 10_000,
      message: () => `nats-server did not listen on ${port}: ${stderr.slice(-500)}`,
    });
  };
  const kill = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    kill,
    start,
    async stop() {
      await kill();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

/** A plain client for publishing and inspecting (closed by the caller). */
export function client(url: string, opts: Parameters<typeof connect>[0] = {}): Promise<NatsConnection> {
  return connect({ servers: url, ...opts });
}
