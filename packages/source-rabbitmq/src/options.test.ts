import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCertificates } from '@connector/testing';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseQueues, rabbitmqOptionsFromEnv, redactUrl, resolveRabbitmqOptions } from './options.js';

const url = 'amqp://127.0.0.1:5672';
const message = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('did not throw');
};

describe('resolveRabbitmqOptions', () => {
  it('defaults: guest on the URL host, amq.topic, a durable queue, prefetch 64, back-offs', () => {
    const o = resolveRabbitmqOptions({ url });
    expect(o.username).toBe('guest');
    expect(o.vhost).toBe('/');
    expect(o.exchange).toBe('amq.topic');
    expect(o.declareExchange).toBe(false);
    expect(o.queues).toEqual([
      {
        name: 'rabbitmq-connector',
        durable: true,
        autoDelete: false,
        exclusive: false,
        arguments: {},
        bound: true,
      },
    ]);
    expect(o.prefetch).toBe(64);
    expect(o.redeliveryDelay).toEqual({ min: 1000, max: 30_000 });
    expect(o.reconnectDelay).toEqual({ min: 500, max: 30_000 });
    expect(o.replyTo).toEqual([]);
  });

  it('takes credentials and vhost from the URL; options override them', () => {
    const o = resolveRabbitmqOptions({ url: 'amqps://bob:s%40cret@mq.example:5671/prod%2Feu' });
    expect([o.username, o.password, o.vhost]).toEqual(['bob', 's@cret', 'prod/eu']);
    expect(resolveRabbitmqOptions({ url: 'amqp://bob:x@h', username: 'al', password: 'y' })).toMatchObject({
      username: 'al',
      password: 'y',
    });
  });

  it('a declared exchange, quorum queue, delivery limit and dead-letter exchange become queue arguments', () => {
    const o = resolveRabbitmqOptions({
      url,
      queue: 'orders',
      exchange: 'events',
      queueType: 'quorum',
      deliveryLimit: 5,
      deadLetterExchange: 'dlx',
      deadLetterRoutingKey: 'dead',
    });
    expect(o.declareExchange).toBe(true);
    expect(o.queues[0]?.arguments).toEqual({
      'x-queue-type': 'quorum',
      'x-delivery-limit': 5,
      'x-dead-letter-exchange': 'dlx',
      'x-dead-letter-routing-key': 'dead',
    });
    expect(o.deadLetterExchange).toBe('dlx');
    expect(o.requeueFailed).toBe(true); // the delivery limit decides when the broker dead-letters
    expect(resolveRabbitmqOptions({ url, deadLetterExchange: 'dlx' }).requeueFailed).toBe(false);
  });

  it('queues mode: consumed as they are, not bound', () => {
    const o = resolveRabbitmqOptions({ url, queues: ['a', { name: 'b', durable: false }] });
    expect(o.queues.map((q) => [q.name, q.durable, q.bound])).toEqual([
      ['a', true, false],
      ['b', false, false],
    ]);
  });

  it.each([
    [{ url: 'http://h' }, 'invalid url="http://h/": expected an amqp:// or amqps:// URL'],
    [
      { url: 'amqp://u:hunter2@' },
      'invalid url="<unparseable>": expected a URL like amqp://host:5672 or amqps://host:5671/vhost',
    ],
    [
      { url, queue: 'amq.mine' },
      `invalid queue="amq.mine": expected a queue name not starting with 'amq.' (reserved by the broker)`,
    ],
    [{ url, prefetch: 0 }, 'invalid prefetch=0: expected an integer from 1 to 65535'],
    [
      { url, deliveryLimit: 3 },
      'invalid deliveryLimit=3: expected queueType quorum (classic queues have no delivery limit)',
    ],
    [
      { url, topics: [] },
      'invalid topics="": expected at least one binding key (or leave it unset to follow the functions)',
    ],
    [
      { url, topics: ['x'.repeat(256)] },
      `invalid topics="${'x'.repeat(256)}": expected a binding key of at most 255 bytes`,
    ],
    [{ url, queues: ['a', 'a'] }, 'invalid queues="a": expected each queue once'],
    [
      { url, replyTo: { allow: [] } },
      'invalid replyTo.allow="": expected at least one allowed reply-to queue pattern',
    ],
    [
      { url, tls: { ca: 'x' } },
      'invalid url="amqp://127.0.0.1:5672": expected an amqps:// URL when TLS certificates are set',
    ],
  ] as const)('refuses %j with one line', (opts, expected) => {
    expect(message(() => resolveRabbitmqOptions(opts as never))).toBe(expected);
  });

  it('never shows the password', () => {
    expect(message(() => resolveRabbitmqOptions({ url: 'http://bob:hunter2@h' }))).not.toContain('hunter2');
    expect(redactUrl('amqp://bob:hunter2@h:5672/v')).toBe('amqp://bob:[redacted]@h:5672/v');
  });
});

describe('rabbitmqOptionsFromEnv', () => {
  it('reads the OpenFaaS Pro names: rabbitmq_url, queues (JSON), credential and certificate files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rmq-env-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const file = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    const certs = testCertificates(dir);
    const o = rabbitmqOptionsFromEnv({
      rabbitmq_url: 'amqps://rabbitmq:5671',
      queues: '[{"name":"queue1","durable":true,"nowait":false,"autodelete":false,"exclusive":false}]',
      username_file: file('username', 'bob\n'),
      password_file: file('password', 'hunter2\n'),
      ca_file: certs.ca,
      cert_file: certs.clientCert,
      key_file: certs.clientKey,
    });
    expect(o).toMatchObject({
      url: 'amqps://rabbitmq:5671',
      queues: [{ name: 'queue1', durable: true, autoDelete: false, exclusive: false }],
      username: 'bob',
      password: 'hunter2',
    });
    expect(String(o.tls?.ca)).toContain('-----BEGIN CERTIFICATE-----');
    expect(String(o.tls?.key)).toContain('PRIVATE KEY-----');
    // read and checked at start (core's readTlsFiles): a key of another certificate is refused here
    expect(() =>
      rabbitmqOptionsFromEnv({
        rabbitmq_url: 'amqps://rabbitmq:5671',
        cert_file: certs.serverCert,
        key_file: certs.clientKey,
      }),
    ).toThrow(/^invalid key_file=".*": expected the private key of cert_file=/);
  });

  it('reads ours; the queue defaults to connector_name and prefetch to max_inflight', () => {
    const o = rabbitmqOptionsFromEnv({
      rabbitmq_url: url,
      connector_name: 'orders-connector',
      max_inflight: '8',
      topics: 'orders.*, audit.#',
      exchange: 'events',
      dead_letter_exchange: 'dlx',
      queue_type: 'quorum',
      delivery_limit: '10',
      redelivery_delay: '2s',
      reconnect_delay_max: '1m',
      heartbeat: '15',
      reply_to_allow: 'replies.*',
    });
    expect(o).toMatchObject({
      queue: 'orders-connector',
      prefetch: 8,
      topics: ['orders.*', 'audit.#'],
      exchange: 'events',
      deadLetterExchange: 'dlx',
      queueType: 'quorum',
      deliveryLimit: 10,
      redeliveryDelay: { min: 2000 },
      reconnectDelay: { max: 60_000 },
      heartbeat: 15_000,
      replyTo: { allow: ['replies.*'] },
    });
    expect(
      rabbitmqOptionsFromEnv({ rabbitmq_url: url, queue: 'q', prefetch: '3', max_inflight: '8' }),
    ).toMatchObject({
      queue: 'q',
      prefetch: 3,
    });
  });

  it.each([
    [{}, 'missing rabbitmq_url: expected a URL like amqp://rabbitmq:5672 (set env rabbitmq_url)'],
    [
      { rabbitmq_url: 'amqp://u:hunter2@h', prefetch: 'lots' },
      'invalid prefetch="lots": expected an integer from 1 to 65535',
    ],
    [
      { rabbitmq_url: 'nats://u:hunter2@h' },
      'invalid rabbitmq_url="nats://u:[redacted]@h": expected an amqp:// or amqps:// URL',
    ],
    [
      { rabbitmq_url: url, queues: '[{"durable":true}]' },
      'invalid queues[0]="{\\"durable\\":true}": expected an object with a name',
    ],
    [
      { rabbitmq_url: url, queues: '[oops' },
      'invalid queues="[oops": expected a JSON list like [{"name":"q1","durable":true}] or names like q1,q2',
    ],
    [
      { rabbitmq_url: url, cert_file: '/x' },
      'missing key_file: expected cert_file and key_file together (mutual TLS)',
    ],
    [
      { rabbitmq_url: url, password_file: '/nonexistent/pw' },
      'invalid password_file="/nonexistent/pw": expected a readable file (ENOENT)',
    ],
    [
      { rabbitmq_url: url, queue_type: 'stream' },
      'invalid queue_type="stream": expected one of classic, quorum',
    ],
    [
      { rabbitmq_url: url, reply_to: 'true' },
      'missing reply_to_allow: expected the reply-to queues (patterns) replies may go to when reply_to=true',
    ],
  ])('refuses %j with one line, never showing a password', (env, expected) => {
    const m = message(() => rabbitmqOptionsFromEnv(env));
    expect(m).toBe(expected);
    expect(m).not.toContain('hunter2');
  });

  it('queues also as a plain list; an empty JSON list means the connector queue', () => {
    expect(parseQueues('a, b')).toEqual(['a', 'b']);
    expect(rabbitmqOptionsFromEnv({ rabbitmq_url: url, queues: '[]' }).queues).toBeUndefined();
  });
});
