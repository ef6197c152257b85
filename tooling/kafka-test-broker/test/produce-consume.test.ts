import { CompressionTypes, type Consumer, type Producer } from 'kafkajs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type KafkaTestBroker, startKafkaBroker } from '../src/index.js';
import { kafka, waitFor } from './helpers.js';

let broker: KafkaTestBroker;
const cleanups: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  broker = await startKafkaBroker();
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await broker.close();
});

async function producer(clientId: string): Promise<Producer> {
  const p = kafka(broker.brokers, clientId).producer();
  await p.connect();
  cleanups.push(() => p.disconnect());
  return p;
}

function consumer(clientId: string, groupId: string, extra: Record<string, unknown> = {}): Consumer {
  const c = kafka(broker.brokers, clientId).consumer({
    groupId,
    sessionTimeout: 6000,
    heartbeatInterval: 300,
    maxWaitTimeInMs: 100,
    ...extra,
  });
  cleanups.push(() => c.disconnect());
  return c;
}

describe('produce and consume over the wire', () => {
  it('delivers 10k keyed messages over 4 partitions to a group, in order per partition', async () => {
    broker.createTopic('orders', 4);
    const p = await producer('producer');
    const total = 10_000;
    const messages = Array.from({ length: total }, (_, i) => ({ key: `key-${i % 97}`, value: `value-${i}` }));
    for (let i = 0; i < total; i += 2500)
      await p.send({ topic: 'orders', messages: messages.slice(i, i + 2500) });

    const produced = broker.produced('orders');
    expect(produced).toHaveLength(total);
    expect(broker.endOffsets('orders').reduce((a, b) => a + b, 0)).toBe(total);
    expect(new Set(produced.map((r) => r.partition)).size).toBe(4);
    // The same key always lands in the same partition (kafkajs' default partitioner).
    const partitionOfKey = new Map<string, number>();
    for (const r of produced) {
      const key = String(r.key);
      expect(partitionOfKey.get(key) ?? r.partition).toBe(r.partition);
      partitionOfKey.set(key, r.partition);
    }

    const c = consumer('consumer', 'orders-group');
    await c.connect();
    await c.subscribe({ topic: 'orders', fromBeginning: true });
    const seen: { partition: number; offset: number; key: string; value: string }[] = [];
    await c.run({
      eachMessage: async ({ partition, message }) => {
        seen.push({
          partition,
          offset: Number(message.offset),
          key: String(message.key),
          value: String(message.value),
        });
      },
    });
    await waitFor(() => seen.length >= total, { timeout: 20_000, message: '10k messages' });
    await waitFor(
      () => {
        const committed = broker.committed('orders-group')['orders'] ?? {};
        return broker.endOffsets('orders').every((end, i) => committed[i] === end);
      },
      { message: 'offsets committed to the end' },
    );

    expect(seen).toHaveLength(total);
    expect(new Set(seen.map((s) => s.value)).size).toBe(total);
    for (let partition = 0; partition < 4; partition++) {
      const got = seen.filter((s) => s.partition === partition);
      const want = produced.filter((r) => r.partition === partition);
      expect(got.map((s) => s.offset)).toEqual(want.map((r) => r.offset));
      expect(got.map((s) => s.value)).toEqual(want.map((r) => String(r.value)));
      expect(got.map((s) => s.key)).toEqual(want.map((r) => String(r.key)));
    }
  });

  it('round-trips keys, null keys, headers, timestamps and gzip batches', async () => {
    broker.createTopic('rich', 2);
    const p = await producer('producer');
    await p.send({
      topic: 'rich',
      messages: [
        {
          key: 'k1',
          value: 'v1',
          partition: 0,
          timestamp: '1700000000000',
          headers: { a: '1', b: Buffer.from([0, 255]) },
        },
        { value: 'no-key', partition: 1, timestamp: '1700000000500' },
      ],
    });
    await p.send({
      topic: 'rich',
      compression: CompressionTypes.GZIP,
      messages: [{ key: 'gz', value: 'zipped '.repeat(50), partition: 0, headers: { enc: 'gzip' } }],
    });

    const produced = broker.produced('rich');
    expect(produced).toHaveLength(3);
    const first = produced.find((r) => String(r.key) === 'k1')!;
    expect(first).toMatchObject({ partition: 0, offset: 0, timestamp: 1700000000000 });
    expect(first.headers.map((h) => [h.key, h.value?.toString('hex')])).toEqual([
      ['a', '31'],
      ['b', '00ff'],
    ]);
    expect(produced.find((r) => String(r.value) === 'no-key')).toMatchObject({ partition: 1, key: null });
    expect(produced.find((r) => String(r.key) === 'gz')).toMatchObject({ partition: 0, offset: 1 });

    const c = consumer('consumer', 'rich-group');
    await c.connect();
    await c.subscribe({ topic: 'rich', fromBeginning: true });
    const seen: { key: string | null; value: string; timestamp: string; headers: Record<string, string> }[] =
      [];
    await c.run({
      eachMessage: async ({ message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {}))
          headers[k] = Buffer.from(v as Buffer).toString('hex');
        seen.push({
          key: message.key === null ? null : String(message.key),
          value: String(message.value),
          timestamp: message.timestamp,
          headers,
        });
      },
    });
    await waitFor(() => seen.length >= 3, { message: '3 messages' });
    expect(seen).toHaveLength(3);
    expect(seen.find((s) => s.key === 'k1')).toEqual({
      key: 'k1',
      value: 'v1',
      timestamp: '1700000000000',
      headers: { a: '31', b: '00ff' },
    });
    expect(seen.find((s) => s.key === null)).toMatchObject({ value: 'no-key', timestamp: '1700000000500' });
    expect(seen.find((s) => s.key === 'gz')).toMatchObject({
      value: 'zipped '.repeat(50),
      headers: { enc: Buffer.from('gzip').toString('hex') },
    });
  });

  it('answers a fetch waiting on an empty partition as soon as a message is produced', async () => {
    broker.createTopic('quiet', 1);
    // maxWaitTime (30 s) is longer than this test's timeout: only an early answer can make it pass.
    const c = consumer('consumer', 'quiet-group', { maxWaitTimeInMs: 30_000 });
    await c.connect();
    await c.subscribe({ topic: 'quiet', fromBeginning: true });
    let resolveArrived: (value: string) => void = () => {};
    const arrived = new Promise<string>((resolve) => {
      resolveArrived = resolve;
    });
    await c.run({ eachMessage: async ({ message }) => resolveArrived(String(message.value)) });
    await waitFor(() => broker.pendingFetches() >= 1, { message: 'a parked fetch' });

    const p = await producer('producer');
    await p.send({ topic: 'quiet', messages: [{ value: 'wake up' }] });
    await expect(arrived).resolves.toBe('wake up');
    // The consumer now parks its next 30 s fetch; closing the broker ends it so disconnect is quick.
    await waitFor(() => broker.pendingFetches() >= 1, { message: 'the next parked fetch' });
    await broker.close();
  }, 15_000);
});

describe('advertised', () => {
  it('sends clients to the advertised address, and refuses an invalid one in one line', async () => {
    // (A loopback address where nothing listens: a name would be looked up in DNS, off this machine.)
    const b = await startKafkaBroker({ advertised: { host: '127.0.0.9', port: 19092 } });
    cleanups.push(() => b.close());
    const admin = kafka(b.brokers, 'advertised', { retry: { retries: 0 } }).admin();
    await admin.connect(); // the bootstrap connection goes to where it listens
    cleanups.push(() => admin.disconnect());
    // The cluster's broker is then looked for where Metadata says it is.
    const failed = await admin.describeCluster().then(
      () => undefined,
      (err: { cause?: { broker?: string } }) => err,
    );
    expect(failed?.cause?.broker).toBe('127.0.0.9:19092');
    await expect(startKafkaBroker({ advertised: { host: 'x', port: 0 } })).rejects.toThrow(
      /^advertised: got \{"host":"x","port":0\}, expected \{ host, port \} with a port in 1\.\.65535$/,
    );
  });
});
