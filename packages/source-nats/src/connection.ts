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
    const e = natsError(err, `connect to ${where}`);
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
