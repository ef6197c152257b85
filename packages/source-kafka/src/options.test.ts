import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCertificates } from '@connector/testing';
import { describe, expect, it, onTestFinished } from 'vitest';
import { checkKafkaOptions, type KafkaSourceOptions, kafkaOptionsFromEnv } from './options.js';
import { kafkaDeadLetterTopic, toMessage } from './source.js';

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nsecret-key-material\n-----END PRIVATE KEY-----\n';

/** A directory with a real CA (openssl), a non-PEM file, an empty file and a password file with spaces kept. */
function files() {
  const dir = mkdtempSync(join(tmpdir(), 'kafka-env-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const at = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  return {
    ca: testCertificates(mkdtempSync(join(dir, 'certs-'))).ca,
    key: at('key.pem', KEY),
    notPem: at('notes.txt', 'not a certificate'),
    empty: at('empty', ''),
    spaced: at('spaced', ' pass word \r\n'),
  };
}

describe('kafkaOptionsFromEnv', () => {
  it('reads the OpenFaaS kafka-connector names and ours', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kafka-env-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'pw'), 's3cret\n');
    const { ca } = testCertificates(dir);
    expect(
      kafkaOptionsFromEnv({
        broker_host: 'kafka:9092',
        topics: 'a, b',
        group: 'g',
        client_id: 'c',
        from_beginning: 'false',
        session_timeout: '10s',
        partition_concurrency: '4',
        ordering: 'none',
        commit_interval: '2s',
        revoke_timeout: '10s',
        fetch_max_wait: '100ms',
        topic_check_interval: '10s',
        ca_file: ca,
        sasl_mechanism: 'SCRAM-SHA-512',
        sasl_username: 'u',
        sasl_password_file: join(dir, 'pw'),
        reply_topic: 'replies',
        dead_letter_topic: 'dead',
      }),
    ).toEqual({
      brokers: ['kafka:9092'],
      topics: ['a', 'b'],
      group: 'g',
      clientId: 'c',
      fromBeginning: false,
      sessionTimeout: 10_000,
      partitionConcurrency: 4,
      ordering: 'none',
      commitInterval: 2000,
      revokeTimeout: 10_000,
      fetchMaxWait: 100,
      topicCheckInterval: 10_000,
      tls: { ca: readFileSync(ca, 'utf8') },
      sasl: { mechanism: 'scram-sha-512', username: 'u', password: 's3cret' },
      replyTopic: 'replies',
      deadLetterTopic: 'dead',
    });
    expect(kafkaOptionsFromEnv({ brokers: 'a:1,b:2', tls: 'true' })).toEqual({
      brokers: ['a:1', 'b:2'],
      tls: true,
    });
  });

  it.each([
    [{}, 'brokers'],
    [{ brokers: 'kafka' }, 'brokers'],
    [{ brokers: 'k:1', topics: 'bad topic' }, 'topics'],
    [{ brokers: 'k:1', session_timeout: '100ms' }, 'session_timeout'],
    [{ brokers: 'k:1', partition_concurrency: '0' }, 'partition_concurrency'],
    [{ brokers: 'k:1', sasl_mechanism: 'gssapi' }, 'sasl_mechanism'],
    [{ brokers: 'k:1', sasl_mechanism: 'plain' }, 'sasl_username'],
    [{ brokers: 'k:1', sasl_mechanism: 'plain', sasl_username: 'u' }, 'sasl_password'],
    [{ brokers: 'k:1', ca_file: '/nonexistent' }, 'ca_file'],
    [{ brokers: 'k:1', commit_interval: 'soon' }, 'commit_interval'],
    [{ brokers: 'k:1', reply_topic: 'a/b' }, 'reply_topic'],
    [{ brokers: 'k:1', ordering: 'partition' }, 'ordering'],
  ])('%j fails with one line naming %s', (env, setting) => {
    expect(() => kafkaOptionsFromEnv(env)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', setting }));
  });

  it('TLS and SASL files: PEM checked, a client certificate needs its key, the password file keeps its spaces', () => {
    const f = files();
    const fails = (env: Record<string, string>) => {
      try {
        kafkaOptionsFromEnv({ brokers: 'k:1', ...env });
      } catch (err) {
        const message = (err as Error).message;
        expect(message).not.toContain('\n');
        expect(message).not.toContain('secret-key-material');
        return { setting: (err as { setting?: string }).setting, message };
      }
      throw new Error('no error');
    };
    expect(fails({ ca_file: f.notPem })).toEqual({
      setting: 'ca_file',
      message: `invalid ca_file=${JSON.stringify(f.notPem)}: expected a PEM file holding a certificate (-----BEGIN CERTIFICATE-----)`,
    });
    expect(fails({ key_file: f.key }).setting).toBe('cert_file');
    expect(fails({ cert_file: f.ca }).setting).toBe('key_file');
    expect(fails({ ca_file: f.ca, tls: 'false' }).setting).toBe('tls');
    expect(fails({ sasl_mechanism: 'plain', sasl_username: 'u', sasl_password_file: f.empty }).setting).toBe(
      'sasl_password_file',
    );
    expect(fails({ sasl_username: 'u', sasl_password: 'p' })).toEqual({
      setting: 'sasl_mechanism',
      message:
        'missing sasl_mechanism: expected plain, scram-sha-256 or scram-sha-512 (sasl_username is set)',
    });
    expect(
      kafkaOptionsFromEnv({
        brokers: 'k:1',
        sasl_mechanism: 'Plain',
        sasl_username: 'u',
        sasl_password_file: f.spaced,
      }).sasl,
    ).toEqual({ mechanism: 'plain', username: 'u', password: ' pass word ' });
  });
});

describe('checkKafkaOptions: tls and sasl given in code', () => {
  const base: KafkaSourceOptions = { brokers: ['k:1'] };
  const problem = (extra: Partial<KafkaSourceOptions>) => {
    try {
      checkKafkaOptions({ ...base, ...extra });
      return undefined;
    } catch (err) {
      return { setting: (err as { setting?: string }).setting, message: (err as Error).message };
    }
  };
  const sasl = (o: object) => ({ sasl: o as KafkaSourceOptions['sasl'] & object });

  it('accepts booleans, PEM contents and each mechanism in any case', () => {
    expect(problem({ tls: true })).toBeUndefined();
    expect(problem({ tls: { ca: CA, cert: CA, key: KEY, rejectUnauthorized: true } })).toBeUndefined();
    for (const mechanism of ['plain', 'SCRAM-SHA-256', 'scram-sha-512'])
      expect(problem(sasl({ mechanism, username: 'u', password: 'p' }))).toBeUndefined();
  });

  it.each([
    [{ tls: { ca: '/etc/ssl/ca.pem' } }, 'tls.ca'],
    [{ tls: { cert: CA } }, 'tls.key'],
    [{ tls: { key: KEY } }, 'tls.cert'],
    [{ tls: { cert: CA, key: 'secret-key-material' } }, 'tls.key'],
    [{ tls: 'yes' as unknown as boolean }, 'tls'],
    [sasl({ mechanism: 'gssapi', username: 'u', password: 'p' }), 'sasl.mechanism'],
    [sasl({ mechanism: 'plain', username: '', password: 'p' }), 'sasl.username'],
    [sasl({ mechanism: 'plain', username: 'u', password: '' }), 'sasl.password'],
    [sasl({ mechanism: 'plain', username: 'u', password: 42 }), 'sasl.password'],
  ])('%j fails with one line naming %s, never echoing a key', (extra, setting) => {
    const p = problem(extra as Partial<KafkaSourceOptions>);
    expect(p?.setting).toBe(setting);
    expect(p?.message).not.toMatch(/secret-key-material|\n|42/);
  });
});

describe('toMessage', () => {
  it('maps a record to a message with the Kafka headers, handing the record headers over raw', () => {
    const binary = Buffer.from([0xe2, 0x82, 0xac, 0x00, 0xff]);
    const m = toMessage({
      topic: 't',
      partition: 2,
      offset: '41',
      key: Buffer.from([0xff, 0x00]),
      value: Buffer.from('v'),
      timestamp: '1700000000000',
      headers: {
        traceparent: Buffer.from('00-a-b-01'),
        'bad name': Buffer.from('x'),
        'X-Topic': Buffer.from('spoof'),
        bin: binary,
      },
    });
    expect(m.topic).toBe('t');
    expect(m.id).toBe('t/2/41');
    expect(m).toMatchObject({ partition: '2', offset: '41' }); // for the consumer span's attributes
    expect(m.key).toBe('/wA=');
    // Core's header policy, not the source, refuses names and encodes values.
    expect(m.headers).toEqual({
      traceparent: Buffer.from('00-a-b-01'),
      'bad name': Buffer.from('x'),
      'X-Topic': Buffer.from('spoof'),
      bin: binary,
      'X-Kafka-Topic': 't',
      'X-Kafka-Partition': '2',
      'X-Kafka-Offset': '41',
      'X-Kafka-Timestamp': '1700000000000',
      'X-Kafka-Key': Buffer.from([0xff, 0x00]),
    });
  });
});

describe('kafkaDeadLetterTopic', () => {
  const letter = (message: ReturnType<typeof toMessage>) => ({
    message,
    function: 'fn.openfaas-fn',
    result: { function: 'fn.openfaas-fn', status: 500, attempt: 3 } as never,
    source: 'kafka',
    reason: 'HTTP 500\nboom',
  });

  it('produces the raw key, value and headers plus the failure, to the topic', async () => {
    const produced: unknown[] = [];
    const handler = kafkaDeadLetterTopic('dead', {
      produce: async (topic, record) => {
        produced.push({ topic, ...record });
      },
    });
    const message = toMessage({
      topic: 't',
      partition: 0,
      offset: '7',
      key: Buffer.from([0xff]),
      value: Buffer.from('body'),
      timestamp: '1',
      headers: { trace: Buffer.from('x') },
    });
    await handler(letter(message));
    expect(produced).toEqual([
      {
        topic: 'dead',
        key: Buffer.from([0xff]),
        value: Buffer.from('body'),
        headers: expect.objectContaining({
          trace: Buffer.from('x'),
          'X-Kafka-Key': Buffer.from([0xff]),
          'X-Kafka-Offset': '7',
          'X-Dead-Letter-Reason': 'HTTP 500 boom',
          'X-Dead-Letter-Function': 'fn.openfaas-fn',
          'X-Dead-Letter-Status': '500',
          'X-Dead-Letter-Attempts': '3',
          'X-Dead-Letter-Source': 'kafka',
        }),
      },
    ]);
  });

  it('rejects (so the message is not committed) when there is no producer', async () => {
    const handler = kafkaDeadLetterTopic('dead', () => undefined);
    const message = toMessage({
      topic: 't',
      partition: 0,
      offset: '1',
      key: null,
      value: null,
      timestamp: '1',
      headers: {},
    });
    await expect(handler(letter(message))).rejects.toMatchObject({ code: 'ERR_SOURCE' });
  });
});
