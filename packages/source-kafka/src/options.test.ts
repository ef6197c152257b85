import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kafkaOptionsFromEnv } from './options.js';
import { kafkaDeadLetterTopic, toMessage } from './source.js';

describe('kafkaOptionsFromEnv', () => {
  it('reads the OpenFaaS kafka-connector names and ours', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kafka-env-'));
    writeFileSync(join(dir, 'pw'), 's3cret\n');
    writeFileSync(join(dir, 'ca.pem'), 'CA');
    expect(
      kafkaOptionsFromEnv({
        broker_host: 'kafka:9092',
        topics: 'a, b',
        group: 'g',
        client_id: 'c',
        from_beginning: 'false',
        session_timeout: '10s',
        partition_concurrency: '4',
        commit_interval: '2s',
        revoke_timeout: '10s',
        fetch_max_wait: '100ms',
        ca_file: join(dir, 'ca.pem'),
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
      commitInterval: 2000,
      revokeTimeout: 10_000,
      fetchMaxWait: 100,
      tls: { ca: 'CA' },
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
  ])('%j fails with one line naming %s', (env, setting) => {
    expect(() => kafkaOptionsFromEnv(env)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', setting }));
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
