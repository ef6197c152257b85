import { createConnection } from 'node:net';
import type { HealthState, Logger } from '@connector/core';
import {
  connect,
  credsAuthenticator,
  type NatsConnection,
  type NodeConnectionOptions,
  nkeyAuthenticator,
} from '@nats-io/transport-node';
import { natsError } from './errors.js';
import { type ResolvedNatsOptions, redactServer } from './options.js';

/** The NATS.js connection options for resolved source options (reconnects for ever). */
export function connectOptions(o: ResolvedNatsOptions): NodeConnectionOptions {
  const c: NodeConnectionOptions = {
    servers: [...o.servers],
    name: o.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: o.reconnectWait,
    waitOnFirstConnect: false,
  };
  const a = o.auth;
  if (a.user !== undefined) c.user = a.user;
  if (a.password !== undefined) c.pass = a.password;
  if (a.token !== undefined) c.token = a.token;
  if (a.nkeySeed !== undefined)
    c.authenticator = nkeyAuthenticator(new TextEncoder().encode(a.nkeySeed.trim()));
  if (a.creds !== undefined) c.authenticator = credsAuthenticator(new TextEncoder().encode(a.creds));
  const t = o.tls;
  if (t !== undefined || o.servers.some((s) => s.startsWith('tls://'))) {
    c.tls = {};
    if (t?.ca !== undefined) c.tls.ca = t.ca;
    if (t?.cert !== undefined) c.tls.cert = t.cert;
    if (t?.key !== undefined) c.tls.key = t.key;
  }
  return c;
}

/**
 * Why a first connection timed out, when a server can tell: a client without a certificate, refused by a server
 * that verifies them, learns of it with TLS 1.3 only after its own handshake, and NATS.js then waits out its connect
 * timeout (20 s) and says `timeout`. nats-server announces `tls_verify` in the INFO line it sends in clear before
 * TLS: one plain look at each server's INFO turns the timeout into "the server requires a client certificate".
 * Otherwise `err` as it is.
 */
async function timeoutCause(o: ResolvedNatsOptions, err: unknown): Promise<unknown> {
  if ((err as Error | undefined)?.name !== 'TimeoutError' || o.tls?.cert !== undefined) return err;
  for (const server of o.servers) {
    const info = await readInfo(server);
    if (info?.['tls_verify'] === true)
      return Object.assign(
        new Error(
          `${redactServer(server)} requires a TLS client certificate (it verifies them): set cert_file and key_file`,
          { cause: err },
        ),
        { code: 'TLS_CLIENT_CERT_REQUIRED' },
      );
  }
  return err;
}

/** The INFO a NATS server sends first on a plain connection (undefined when none comes within 2 s). */
function readInfo(server: string): Promise<Record<string, unknown> | undefined> {
  const u = new URL(server); // resolved servers always have their scheme (options.ts `parseServer`)
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return new Promise((resolve) => {
    let buf = '';
    const socket = createConnection({ host, port: Number(u.port || 4222) });
    const done = (info: Record<string, unknown> | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(info);
    };
    const timer = setTimeout(() => done(undefined), 2000);
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      const end = buf.indexOf('\r\n');
      if (end < 0) {
        if (buf.length > 64 * 1024) done(undefined);
        return;
      }
      const line = buf.slice(0, end);
      try {
        done(line.startsWith('INFO ') ? (JSON.parse(line.slice(5)) as Record<string, unknown>) : undefined);
      } catch {
        done(undefined);
      }
    });
    socket.on('error', () => done(undefined));
    socket.on('close', () => done(undefined));
  });
}

/** Connect (a failure is a normalised BrokerError) and keep `health` in step with the connection's status. */
export async function openConnection(
  o: ResolvedNatsOptions,
  health: HealthState,
  log: Logger,
): Promise<NatsConnection> {
  const where = o.servers.map(redactServer).join(', ');
  let nc: NatsConnection;
  try {
    nc = await connect(connectOptions(o));
  } catch (err) {
    const e = natsError(await timeoutCause(o, err), `connect to ${where}`);
    health.down(e);
    throw e;
  }
  health.up();
  log.info({ server: nc.getServer(), version: nc.info?.version }, 'connected to NATS');
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        health.down(new Error(`disconnected from ${redactServer(s.server)}`));
        log.warn({ server: redactServer(s.server) }, 'NATS connection lost; reconnecting');
      } else if (s.type === 'reconnect') {
        health.up();
        log.info({ server: redactServer(s.server) }, 'reconnected to NATS');
      } else if (s.type === 'error') {
        const e = natsError(s.error, 'NATS server');
        health.failed(e);
        log.warn({ err: e.message, code: e.code }, 'NATS server error');
      } else if (s.type === 'slowConsumer') {
        log.warn(
          { pending: s.pending },
          'slow consumer: the client dropped messages (core mode is at-most-once)',
        );
      }
    }
  })().catch(() => undefined);
  void nc.closed().then(() => health.down());
  return nc;
}
