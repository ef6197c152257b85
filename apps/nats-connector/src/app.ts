import { type Connector, type Env, type Logger, type Setting, startConnectorFromEnv } from '@connector/core';
import { natsMatch, natsOptionsFromEnv, natsSource } from '@connector/source-nats';

/** The NATS connector's own env settings (besides core's), for `--help` and the misspelling check. */
export const NATS_SETTINGS: readonly Setting[] = [
  { name: 'nats_url', default: 'nats://nats:4222', help: 'NATS server URL(s), comma-separated' },
  { name: 'nats_url_file', help: 'file holding nats_url (when it carries user:password)' },
  { name: 'broker_host', help: 'OpenFaaS nats-connector name: host[:port] (nats_url wins)' },
  { name: 'mode', default: 'jetstream', help: 'jetstream (at-least-once) or core (at-most-once)' },
  { name: 'stream', default: '(required in jetstream mode)', help: 'JetStream stream' },
  { name: 'subjects', help: "subjects to consume (default: the functions' topics)" },
  { name: 'topics', help: 'OpenFaaS nats-connector name of subjects' },
  { name: 'consumer', default: 'openfaas-<name>', help: 'durable pull consumer (also durable)' },
  { name: 'durable', help: 'alias of consumer' },
  { name: 'create_stream', default: 'true', help: 'create the stream when missing' },
  { name: 'deliver_policy', default: 'all', help: 'where a new consumer starts' },
  { name: 'ack_wait', default: '30s', help: 'redelivery after this without an ack' },
  { name: 'max_ack_pending', default: '<max_inflight>', help: 'unacked messages at most' },
  { name: 'max_deliver', default: '-1', help: 'deliveries before the server gives up (-1: no limit)' },
  { name: 'batch', default: '10', help: 'messages per pull' },
  { name: 'fetch_expires', default: '5s', help: 'how long one pull waits' },
  { name: 'nak_delay', default: '1s', help: 'redelivery delay of a failed message (grows)' },
  { name: 'nak_delay_max', default: '60s', help: 'that delay cap' },
  { name: 'queue', help: 'core mode: queue group shared by replicas' },
  { name: 'queue_group', help: 'alias of queue' },
  { name: 'reply', default: 'false', help: 'core mode: publish responses to a reply subject' },
  { name: 'reply_subjects', help: 'reply subjects that may be answered (NATS wildcards)' },
  { name: 'connection_name', help: 'client name shown by the server' },
  { name: 'reconnect_wait', default: '2s', help: 'delay between reconnect attempts' },
  { name: 'user', help: 'user (also username)' },
  { name: 'username', help: 'alias of user' },
  { name: 'password', help: 'password (or password_file)' },
  { name: 'password_file', help: 'file holding the password' },
  { name: 'token', help: 'token (or token_file)' },
  { name: 'token_file', help: 'file holding the token' },
  { name: 'nkey_seed', help: 'nkey seed (or nkey_seed_file)' },
  { name: 'nkey_seed_file', help: 'file holding the nkey seed' },
  { name: 'creds', help: 'credentials (.creds content; or creds_file)' },
  { name: 'creds_file', help: '.creds file' },
  { name: 'ca_file', help: 'CA certificate (PEM); also tls_ca_file' },
  { name: 'cert_file', help: 'client certificate (PEM); also tls_cert_file' },
  { name: 'key_file', help: 'client key (PEM); also tls_key_file' },
  { name: 'tls_ca_file', help: 'alias of ca_file' },
  { name: 'tls_cert_file', help: 'alias of cert_file' },
  { name: 'tls_key_file', help: 'alias of key_file' },
  { name: 'asynchronous_invocation', help: 'OpenFaaS nats-connector name of async_invocation' },
];

/** Options of `startNatsConnector`. */
export interface NatsConnectorOptions {
  /** Environment (default `process.env`). */
  env?: Env;
  /** Handle SIGTERM/SIGINT (default true). */
  signals?: boolean;
  /** Logger (default: pino at env `log_level`). */
  logger?: Logger;
}

/** The OpenFaaS nats-connector's `asynchronous_invocation` is core's `async_invocation` (which wins when both are set). */
export function envWithAliases(env: Env): Env {
  const alias = env['asynchronous_invocation'];
  if (alias === undefined || env['async_invocation'] !== undefined) return env;
  return { ...env, async_invocation: alias };
}

/** Read env, then start controller (NATS wildcard topic matching) + NATS source as one connector. */
export async function startNatsConnector(options: NatsConnectorOptions = {}): Promise<Connector> {
  return startConnectorFromEnv({
    env: envWithAliases(options.env ?? process.env),
    name: 'nats-connector',
    settings: NATS_SETTINGS,
    source: (e) => natsSource(natsOptionsFromEnv(e)),
    controller: { topicMatcher: natsMatch },
    signals: options.signals ?? true,
    ...(options.logger ? { logger: options.logger } : {}),
  });
}
