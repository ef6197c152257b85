#!/usr/bin/env node
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  BrokerConfigError,
  type KafkaBrokerOptions,
  type KafkaTestBroker,
  startKafkaBroker,
} from './broker.js';
import type { SaslUser } from './sasl.js';

const USAGE = `Usage: kafka-test-broker [--port N] [--host H] [--partitions N] [--no-auto-create] [--verbose]
       [--tls-cert FILE --tls-key FILE [--tls-ca FILE] [--tls-request-cert]] [--sasl-user [MECHANISM/]USER:PASSWORD]...
A Kafka wire-protocol broker for tests (in memory, single node). Ctrl-C stops it.
--tls-*: listen with TLS (PEM files; --tls-request-cert: mutual TLS, clients need a certificate of --tls-ca).
--sasl-user: require SASL; repeatable; MECHANISM is plain, scram-sha-256 or scram-sha-512 (default: any).`;

/** Parses CLI arguments and starts the broker; prints one line with its address on `out`. */
export async function runCli(
  argv: string[],
  out: (line: string) => void = console.log,
): Promise<KafkaTestBroker | null> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '9092' },
      host: { type: 'string', default: '127.0.0.1' },
      partitions: { type: 'string', default: '1' },
      'no-auto-create': { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-ca': { type: 'string' },
      'tls-request-cert': { type: 'boolean', default: false },
      'sasl-user': { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    out(USAGE);
    return null;
  }
  const int = (setting: string, raw: string): number => {
    if (!/^\d+$/.test(raw))
      throw new BrokerConfigError(
        setting,
        `--${setting}: got ${JSON.stringify(raw)}, expected a whole number`,
      );
    return Number(raw);
  };
  const file = (setting: string, path: string | undefined): string | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new BrokerConfigError(
        setting,
        `--${setting}: cannot read ${JSON.stringify(path)} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`,
      );
    }
  };
  const cert = file('tls-cert', values['tls-cert']);
  const key = file('tls-key', values['tls-key']);
  const ca = file('tls-ca', values['tls-ca']);
  let tls: KafkaBrokerOptions['tls'];
  if (cert !== undefined || key !== undefined || ca !== undefined || values['tls-request-cert']) {
    if (cert === undefined || key === undefined) {
      const missing = cert === undefined ? 'tls-cert' : 'tls-key';
      throw new BrokerConfigError(missing, `--${missing}: required with the other --tls-* options`);
    }
    tls = { cert, key, ...(ca !== undefined ? { ca } : {}), requestCert: values['tls-request-cert'] };
  }
  const users = (values['sasl-user'] ?? []).map((spec): SaslUser => {
    // [MECHANISM/]USER:PASSWORD; the password may hold ':' and is never echoed.
    const m = /^(?:([A-Za-z0-9-]+)\/)?([^:]+):(.*)$/s.exec(spec);
    if (m === null) {
      throw new BrokerConfigError('sasl-user', '--sasl-user: expected [MECHANISM/]USER:PASSWORD');
    }
    return { ...(m[1] !== undefined ? { mechanism: m[1] } : {}), username: m[2]!, password: m[3]! };
  });
  const broker = await startKafkaBroker({
    port: int('port', values.port),
    host: values.host,
    partitions: int('partitions', values.partitions),
    autoCreateTopics: !values['no-auto-create'],
    ...(tls !== undefined ? { tls } : {}),
    ...(users.length > 0 ? { sasl: { users } } : {}),
    ...(values.verbose ? { log: (line: string) => out(`kafka-test-broker: ${line}`) } : {}),
  });
  const security = [tls ? (tls.requestCert ? 'mutual TLS' : 'TLS') : '', users.length > 0 ? 'SASL' : '']
    .filter(Boolean)
    .join(' + ');
  out(`kafka-test-broker listening on ${broker.brokers[0]}${security ? ` (${security})` : ''}`);
  return broker;
}

async function main(): Promise<void> {
  let broker: KafkaTestBroker | null;
  try {
    broker = await runCli(process.argv.slice(2));
  } catch (err) {
    console.error(`kafka-test-broker: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 2;
    return;
  }
  if (broker === null) return;
  const running = broker;
  const stop = () => {
    running.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(realpathSync(entry)).href) {
  main().catch((err: unknown) => {
    console.error(`kafka-test-broker: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  });
}
