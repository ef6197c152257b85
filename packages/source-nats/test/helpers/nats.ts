import { join } from 'node:path';
import { findExecutable, startServerProcess } from '@connector/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';

export { freePort } from '@connector/testing';

/** Path of the nats-server binary (env NATS_SERVER_BIN, else PATH and /usr/sbin). */
export const NATS_SERVER: string =
  findExecutable(process.env['NATS_SERVER_BIN'] ?? '') ?? findExecutable('nats-server') ?? 'nats-server';

/** The shared NATS server of this machine and CI (`.ci/run` starts it). */
export const SHARED_NATS_URL = process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222';

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
  const server = await startServerProcess({
    command: NATS_SERVER,
    prefix: 'nats-test-',
    config: `${options.config ?? ''}\n`,
    args: ({ port, dir, configFile }) => [
      '-c',
      configFile,
      '-a',
      '127.0.0.1',
      '-p',
      String(port),
      '-js',
      '-sd',
      join(dir, 'js'),
    ],
  });
  return {
    url: `nats://127.0.0.1:${server.port}`,
    port: server.port,
    storeDir: server.dir,
    kill: server.kill,
    start: server.start,
    stop: server.stop,
  };
}

/** A plain client for publishing and inspecting (closed by the caller). */
export function client(url: string, opts: Parameters<typeof connect>[0] = {}): Promise<NatsConnection> {
  return connect({ servers: url, ...opts });
}
