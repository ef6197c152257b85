import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import {
  type KafkaBrokerOptions,
  type KafkaTestBroker,
  startKafkaBroker,
} from '@connector/kafka-test-broker';
import {
  cleanups,
  memoryLogger,
  startGateway,
  type TestCertificates,
  type TestGateway,
  testCertificates,
  waitFor,
} from '@connector/testing';
import { Kafka, type KafkaConfig, logLevel, type SASLOptions } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type KafkaSourceOptions,
  kafkajsClient,
  kafkaOptionsFromEnv,
  type SaslMechanism,
} from '../src/index.js';
import { fixRequestQueueTimer } from '../src/request-queue-timer.js';
import { connect } from './helpers.js';

const PASSWORD = 'pw-7f3a9c-not-for-logs';
const WRONG = 'wrong-2b8e51-not-for-logs';
const MECHANISMS: SaslMechanism[] = ['plain', 'scram-sha-256', 'scram-sha-512'];

let dir: string;
let certs: TestCertificates;
let pem: Record<keyof TestCertificates, string>;
const cleanup = cleanups();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'source-kafka-tls-'));
  certs = testCertificates(dir);
  pem = Object.fromEntries(
    Object.entries(certs).map(([k, path]) => [k, readFileSync(path, 'utf8')]),
  ) as typeof pem;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => cleanup.run());

/**
 * A TLS broker (mutual TLS with `mtls`, plain TCP with `tls: false`) with SASL user `app` when `sasl` is set, and a
 * producer that can reach it.
 */
async function secureKafka(options: { tls?: boolean; mtls?: boolean; sasl?: boolean } = {}): Promise<{
  broker: KafkaTestBroker;
  log: string[];
  produce: (topic: string, value: string) => Promise<void>;
}> {
  const log: string[] = [];
  const brokerOptions: KafkaBrokerOptions = {
    partitions: 1,
    log: (line) => log.push(line),
    ...(options.tls === false
      ? {}
      : {
          tls: {
            cert: pem.serverCert,
            key: pem.serverKey,
            ...(options.mtls ? { ca: pem.ca, requestCert: true } : {}),
          },
        }),
    ...(options.sasl ? { sasl: { users: [{ username: 'app', password: PASSWORD }] } } : {}),
  };
  const broker = await startKafkaBroker(brokerOptions);
  cleanup.add(() => broker.close());
  const client: KafkaConfig = {
    clientId: 'test-producer',
    brokers: broker.brokers,
    logLevel: logLevel.NOTHING,
    ...(options.tls === false
      ? {}
      : { ssl: { ca: pem.ca, ...(options.mtls ? { cert: pem.clientCert, key: pem.clientKey } : {}) } }),
    ...(options.sasl
      ? { sasl: { mechanism: 'plain', username: 'app', password: PASSWORD } as SASLOptions }
      : {}),
  };
  fixRequestQueueTimer(); // (as helpers.ts: no TimeoutNegativeWarning from the test's own producer)
  const producer = new Kafka(client).producer({ allowAutoTopicCreation: true });
  await producer.connect();
  cleanup.add(() => producer.disconnect());
  return {
    broker,
    log,
    async produce(topic, value) {
      broker.createTopic(topic, 1);
      await producer.send({ topic, messages: [{ key: 'k', value }] });
    },
  };
}

async function gateway(topic: string): Promise<TestGateway> {
  const g = await startGateway({ functions: [{ name: 'fn', annotations: { topic } }] });
  cleanup.add(() => g.close());
  return g;
}

/** Produces one record and waits for the function to get it through a connector with `source` options. */
async function deliversEndToEnd(
  k: Awaited<ReturnType<typeof secureKafka>>,
  topic: string,
  source: Omit<KafkaSourceOptions, 'brokers'> & { brokers?: readonly string[] },
): Promise<ReturnType<typeof memoryLogger>> {
  const g = await gateway(topic);
  await k.produce(topic, `hello ${topic}`);
  const logger = memoryLogger();
  const { connector } = await connect(
    g,
    { brokers: k.broker.brokers, topics: [topic], group: `g-${topic}`, ...source },
    { logger },
  );
  cleanup.add(() => connector.stop());
  await waitFor(() => g.invocations('fn').some((r) => r.status === 200), {
    timeout: 20_000,
    message: `the record of ${topic} delivered`,
  });
  expect(g.invocations('fn').map((r) => r.body.toString())).toEqual([`hello ${topic}`]);
  await waitFor(() => k.broker.committed(`g-${topic}`)[topic]?.[0] === 1, {
    message: 'its offset committed',
  });
  expect(connector.ready()).toBe(true);
  expect(JSON.stringify(logger.lines)).not.toContain(PASSWORD);
  return logger;
}

describe('Kafka source over TLS and SASL (real kafkajs, test broker)', () => {
  it('TLS with a private CA', async () => {
    const k = await secureKafka();
    await deliversEndToEnd(k, 'tls-ca', { tls: { ca: pem.ca } });
  });

  it('mutual TLS: CA, client certificate and key', async () => {
    const k = await secureKafka({ mtls: true });
    await deliversEndToEnd(k, 'tls-mutual', {
      tls: { ca: pem.ca, cert: pem.clientCert, key: pem.clientKey },
    });
  });

  it.each(MECHANISMS)('SASL %s over TLS', async (mechanism) => {
    const k = await secureKafka({ sasl: true });
    await deliversEndToEnd(k, `sasl-${mechanism}`, {
      tls: { ca: pem.ca },
      sasl: { mechanism, username: 'app', password: PASSWORD },
    });
  });

  it('SASL plain without TLS works, with one warning that the password crosses in clear text', async () => {
    const k = await secureKafka({ tls: false, sasl: true });
    const logger = await deliversEndToEnd(k, 'sasl-plain-cleartext', {
      sasl: { mechanism: 'plain', username: 'app', password: PASSWORD },
    });
    const warnings = logger.lines.filter((l) => l.level === 'warn').map((l) => l.msg);
    expect(warnings).toEqual([
      'SASL PLAIN without TLS: the password crosses the network in clear text (set tls)',
    ]);
  });

  it('from the env names: ca_file, cert_file, key_file, SCRAM-SHA-512 with sasl_password_file', async () => {
    const k = await secureKafka({ mtls: true, sasl: true });
    const passwordFile = join(dir, 'sasl-password');
    writeFileSync(passwordFile, `${PASSWORD}\n`);
    const options = kafkaOptionsFromEnv({
      brokers: k.broker.brokers.join(','),
      ca_file: certs.ca,
      cert_file: certs.clientCert,
      key_file: certs.clientKey,
      sasl_mechanism: 'SCRAM-SHA-512',
      sasl_username: 'app',
      sasl_password_file: passwordFile,
    });
    await deliversEndToEnd(k, 'env-mtls-scram', options);
  });

  it.each(MECHANISMS)(
    'SASL %s with a wrong password: not ready, one line naming the mechanism, the password nowhere',
    async (mechanism) => {
      const k = await secureKafka({ sasl: true });
      const topic = `wrong-${mechanism}`;
      const g = await gateway(topic);
      const logger = memoryLogger();
      const { connector } = await connect(
        g,
        {
          brokers: k.broker.brokers,
          topics: [topic],
          group: `g-${topic}`,
          tls: { ca: pem.ca },
          sasl: { mechanism, username: 'app', password: WRONG },
          logLevel: logLevel.DEBUG,
        },
        { logger, restartDelay: { min: 60_000, max: 60_000 } },
      );
      cleanup.add(() => connector.stop());
      expect(connector.ready()).toBe(false);
      const reasons = connector.readiness();
      const reason = reasons.find((r) => r.startsWith('source kafka not connected'));
      expect(reason).toBeDefined();
      expect(reason).toMatch(new RegExp(`SASL ${mechanism} authentication .*refused`, 'i'));
      // kafkajs's own lines (at DEBUG here) come through the same logger, tagged; the connector's are one line.
      const kafkajsLines = logger.lines.filter(
        (l) => (l.obj as { component?: string }).component === 'kafkajs',
      );
      expect(kafkajsLines.length).toBeGreaterThan(5);
      for (const l of kafkajsLines) {
        expect(l.obj).toHaveProperty('namespace');
        expect(l.obj).not.toHaveProperty('timestamp'); // the connector's logger stamps lines itself
      }
      const failures = logger.lines.filter((l) => l.level === 'error' && !kafkajsLines.includes(l));
      expect(failures).toHaveLength(1);
      const line = failures[0]?.msg ?? '';
      expect(line).toMatch(new RegExp(`SASL ${mechanism} authentication .*refused`, 'i'));
      expect(line).not.toContain('\n');
      expect(k.log).toContain(`closing connection: SASL ${mechanism.toUpperCase()} authentication failed`);
      const everything = inspect({ lines: logger.lines, reasons }, { depth: 20 });
      expect(everything).not.toContain(WRONG);
      expect(everything).not.toContain(PASSWORD);
    },
  );

  it('the client rejects a refused login with a not-retryable ERR_BROKER_AUTH that holds no password', async () => {
    const k = await secureKafka({ sasl: true });
    const client = kafkajsClient({
      brokers: k.broker.brokers,
      tls: { ca: pem.ca },
      sasl: { mechanism: 'scram-sha-256', username: 'app', password: WRONG },
    });
    cleanup.add(() => client.close());
    const err = await client
      .consume(
        ['t'],
        async () => {},
        () => {},
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toMatchObject({
      code: 'ERR_BROKER_AUTH',
      canRetry: false,
      brokerCode: 'KafkaJSSASLAuthenticationError',
    });
    expect((err as Error).message).toMatch(/^SASL scram-sha-256 authentication as "app" refused by Kafka: /);
    // The whole error, its cause chain and every property included.
    expect(inspect(err, { depth: 20, showHidden: true })).not.toContain(WRONG);
  });
});
