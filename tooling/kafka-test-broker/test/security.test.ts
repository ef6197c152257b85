import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanups, type TestCertificates, testCertificates } from '@connector/testing';
import type { KafkaConfig, SASLOptions } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiKey,
  ErrorCode,
  type KafkaBrokerOptions,
  type KafkaTestBroker,
  startKafkaBroker,
} from '../src/index.js';
import { Reader, Writer } from '../src/protocol.js';
import { kafka, RawClient, waitFor } from './helpers.js';

let dir: string;
let certs: TestCertificates;
let pem: Record<keyof TestCertificates, string>;
const brokers: KafkaTestBroker[] = [];
const cleanup = cleanups();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kafka-test-broker-tls-'));
  certs = testCertificates(dir);
  pem = Object.fromEntries(
    Object.entries(certs).map(([k, path]) => [k, readFileSync(path, 'utf8')]),
  ) as typeof pem;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  try {
    await cleanup.run();
  } finally {
    for (const b of brokers.splice(0)) await b.close();
  }
});

async function start(options: KafkaBrokerOptions): Promise<{ broker: KafkaTestBroker; log: string[] }> {
  const log: string[] = [];
  const broker = await startKafkaBroker({ ...options, log: (line) => log.push(line) });
  brokers.push(broker);
  return { broker, log };
}

/** Produces one record and consumes it back in a group: every connection kafkajs opens must get through. */
async function roundTrip(broker: KafkaTestBroker, extra: Partial<KafkaConfig>, topic: string): Promise<void> {
  broker.createTopic(topic, 1);
  const client = kafka(broker.brokers, `c-${topic}`, extra);
  const producer = client.producer();
  await producer.connect();
  cleanup.add(() => producer.disconnect());
  await producer.send({ topic, messages: [{ key: 'k', value: `hello ${topic}` }] });
  expect(broker.produced(topic).map((r) => r.value?.toString())).toEqual([`hello ${topic}`]);
  const consumer = client.consumer({
    groupId: `g-${topic}`,
    sessionTimeout: 6000,
    heartbeatInterval: 300,
    maxWaitTimeInMs: 100,
  });
  cleanup.add(() => consumer.disconnect());
  const seen: string[] = [];
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      seen.push(message.value?.toString() ?? '');
    },
  });
  await waitFor(() => seen.length === 1, { message: `the record of ${topic} consumed` });
  expect(seen).toEqual([`hello ${topic}`]);
}

/** Connecting a producer fails: resolves with the error kafkajs gave. */
async function connectError(broker: KafkaTestBroker, extra: Partial<KafkaConfig>): Promise<Error> {
  const producer = kafka(broker.brokers, 'refused', {
    ...extra,
    retry: { retries: 0, initialRetryTime: 50 },
  }).producer();
  cleanup.add(() => producer.disconnect());
  return producer.connect().then(
    () => {
      throw new Error('connected, but should have been refused');
    },
    (err: Error) => err,
  );
}

describe('TLS', () => {
  it('serves kafkajs over TLS with a certificate of a private CA', async () => {
    const { broker } = await start({ tls: { cert: pem.serverCert, key: pem.serverKey } });
    await roundTrip(broker, { ssl: { ca: pem.ca } }, 'tls-plain');
  });

  it('refuses a client that does not trust the CA, and one that speaks plain TCP', async () => {
    const { broker, log } = await start({ tls: { cert: pem.serverCert, key: pem.serverKey } });
    const untrusted = await connectError(broker, { ssl: true });
    expect(untrusted.message).toMatch(
      /self[- ]signed certificate|unable to verify|unable to get local issuer/,
    );
    const plain = await connectError(broker, {
      connectionTimeout: 1000,
      requestTimeout: 1000,
      enforceRequestTimeout: true,
    });
    expect(plain.name).toMatch(/KafkaJS/);
    await waitFor(() => log.some((l) => l.startsWith('TLS handshake failed')), {
      message: 'a TLS handshake failure logged',
    });
  });

  it('mutual TLS: a client certificate signed by the CA is required', async () => {
    const { broker } = await start({
      tls: { cert: pem.serverCert, key: pem.serverKey, ca: pem.ca, requestCert: true },
    });
    await roundTrip(broker, { ssl: { ca: pem.ca, cert: pem.clientCert, key: pem.clientKey } }, 'tls-mutual');
    const without = await connectError(broker, { ssl: { ca: pem.ca } });
    expect(without.name).toMatch(/KafkaJS/);
  });

  it('rejects incomplete TLS options with one line naming the setting', async () => {
    await expect(startKafkaBroker({ tls: { cert: pem.serverCert, key: '' } })).rejects.toThrow(
      /^tls\.key: expected PEM contents/,
    );
    await expect(
      startKafkaBroker({ tls: { cert: pem.serverCert, key: pem.serverKey, requestCert: true } }),
    ).rejects.toThrow(/^tls\.ca: required with tls\.requestCert/);
  });
});

describe('SASL', () => {
  const users = [
    { username: 'alice', password: 'alice-secret' }, // any mechanism
    { mechanism: 'plain', username: 'plain-only', password: 'plain-secret' },
  ];
  const sasl = (mechanism: string, username: string, password: string) =>
    ({ sasl: { mechanism, username, password } as SASLOptions }) as Partial<KafkaConfig>;

  it.each(['plain', 'scram-sha-256', 'scram-sha-512'])(
    '%s over plain TCP: produce and consume',
    async (m) => {
      const { broker } = await start({ sasl: { users } });
      await roundTrip(broker, sasl(m, 'alice', 'alice-secret'), `sasl-${m}`);
    },
  );

  it.each(['plain', 'scram-sha-256', 'scram-sha-512'])('%s over TLS: produce and consume', async (m) => {
    const { broker } = await start({ sasl: { users }, tls: { cert: pem.serverCert, key: pem.serverKey } });
    await roundTrip(broker, { ssl: { ca: pem.ca }, ...sasl(m, 'alice', 'alice-secret') }, `sasl-tls-${m}`);
  });

  it.each([
    ['plain', 'SASL PLAIN authentication failed: Authentication failed: Invalid username or password'],
    [
      'scram-sha-256',
      'SASL SCRAM SHA256 authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256',
    ],
    [
      'scram-sha-512',
      'SASL SCRAM SHA512 authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512',
    ],
  ])('%s with a wrong password: SASL_AUTHENTICATION_FAILED, connection closed', async (m, message) => {
    const { broker, log } = await start({ sasl: { users } });
    const err = await connectError(broker, sasl(m, 'alice', 'not-the-password'));
    expect(err.name).toBe('KafkaJSSASLAuthenticationError');
    expect(err.message).toBe(message);
    const upper = m.toUpperCase();
    expect(log).toContain(`closing connection: SASL ${upper} authentication failed`);
    expect(log.join('\n')).not.toMatch(/secret|not-the-password/);
  });

  it('on the wire: a wrong PLAIN password gets SASL_AUTHENTICATION_FAILED (58) and the connection is closed', async () => {
    const { broker } = await start({ sasl: { users } });
    const raw = await RawClient.open(broker.port);
    cleanup.add(async () => raw.close());
    const handshake = new Reader(
      await raw.send(ApiKey.SaslHandshake, 1, new Writer().string('PLAIN').toBuffer()),
    );
    expect(handshake.int16()).toBe(ErrorCode.NONE);
    expect(handshake.array((r) => r.string())).toEqual(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']);
    const token = Buffer.from('\u0000alice\u0000wrong-password');
    const auth = new Reader(await raw.send(ApiKey.SaslAuthenticate, 1, new Writer().bytes(token).toBuffer()));
    expect(auth.int16()).toBe(ErrorCode.SASL_AUTHENTICATION_FAILED);
    expect(auth.nullableString()).toBe('Authentication failed: Invalid username or password');
    expect(auth.bytes()).toEqual(Buffer.alloc(0));
    expect(auth.int64()).toBe(0); // v1: session lifetime
    await raw.closed;
  });

  it('on the wire: the right PLAIN password opens every other API', async () => {
    const { broker } = await start({ sasl: { users } });
    const raw = await RawClient.open(broker.port);
    cleanup.add(async () => raw.close());
    await raw.send(ApiKey.SaslHandshake, 1, new Writer().string('PLAIN').toBuffer());
    const token = Buffer.from('\u0000alice\u0000alice-secret');
    const auth = new Reader(await raw.send(ApiKey.SaslAuthenticate, 0, new Writer().bytes(token).toBuffer()));
    expect(auth.int16()).toBe(ErrorCode.NONE);
    const metadata = new Reader(await raw.send(ApiKey.Metadata, 0, new Writer().int32(0).toBuffer()));
    expect(metadata.array((r) => [r.int32(), r.string(), r.int32()])).toEqual([
      [0, '127.0.0.1', broker.port],
    ]);
    // A second handshake on an authenticated connection is out of order.
    const again = new Reader(
      await raw.send(ApiKey.SaslHandshake, 1, new Writer().string('PLAIN').toBuffer()),
    );
    expect(again.int16()).toBe(ErrorCode.ILLEGAL_SASL_STATE);
  });

  it('a user restricted to PLAIN cannot log in with SCRAM; an unknown user cannot log in at all', async () => {
    const { broker } = await start({ sasl: { users } });
    const scram = await connectError(broker, sasl('scram-sha-256', 'plain-only', 'plain-secret'));
    expect(scram.name).toBe('KafkaJSSASLAuthenticationError');
    const unknown = await connectError(broker, sasl('plain', 'mallory', 'alice-secret'));
    expect(unknown.name).toBe('KafkaJSSASLAuthenticationError');
    await roundTrip(broker, sasl('plain', 'plain-only', 'plain-secret'), 'sasl-plain-only');
  });

  it('a mechanism no user has is refused with UNSUPPORTED_SASL_MECHANISM', async () => {
    const { broker } = await start({
      sasl: { users: [{ mechanism: 'PLAIN', username: 'u', password: 'p' }] },
    });
    const err = await connectError(broker, sasl('scram-sha-512', 'u', 'p'));
    expect(err.message).toMatch(/does not support the requested SASL mechanism/);
  });

  it('a client without SASL is cut off at its first request other than ApiVersions', async () => {
    const { broker, log } = await start({ sasl: { users } });
    const raw = await RawClient.open(broker.port);
    cleanup.add(async () => raw.close());
    const versions = new Reader(await raw.send(ApiKey.ApiVersions, 0, Buffer.alloc(0)));
    expect(versions.int16()).toBe(ErrorCode.NONE);
    // Metadata v0 for every topic: no answer, the connection is closed.
    let answered = false;
    void raw.send(ApiKey.Metadata, 0, new Writer().int32(0).toBuffer()).then(() => {
      answered = true;
    });
    await raw.closed; // 'data' (and its promise jobs) would come before 'close'
    expect(answered).toBe(false);
    expect(log).toContain('closing connection: API key 3 before SASL authentication');
    // A kafkajs client without sasl settings gets no further than ApiVersions.
    const producer = kafka(broker.brokers, 'no-sasl', { retry: { retries: 0 } }).producer();
    cleanup.add(() => producer.disconnect());
    await producer.connect();
    await expect(producer.send({ topic: 't', messages: [{ value: 'v' }] })).rejects.toThrow();
    expect(broker.produced('t')).toEqual([]);
  });

  it('rejects invalid users with one line naming the setting and never the password', async () => {
    await expect(startKafkaBroker({ sasl: { users: [] } })).rejects.toThrow(
      /^sasl\.users: expected at least one/,
    );
    await expect(
      startKafkaBroker({ sasl: { users: [{ mechanism: 'gssapi', username: 'u', password: 'hidden-pw' }] } }),
    ).rejects.toThrow(
      /^sasl\.users\[0\]\.mechanism: got "gssapi", expected one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512$/,
    );
    await expect(
      startKafkaBroker({
        sasl: {
          users: [
            { username: 'u', password: 'hidden-pw' },
            { mechanism: 'plain', username: 'u', password: 'hidden-pw' },
          ],
        },
      }),
    ).rejects.toThrow(/^sasl\.users\[1\]\.username: "u" is given twice for PLAIN$/);
  });
});
