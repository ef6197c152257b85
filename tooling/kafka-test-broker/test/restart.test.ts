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

describe('broker restart', () => {
  it('is survived mid-stream by a producer and a consumer group: every message is consumed', async () => {
    broker.createTopic('stream', 3);
    const portBefore = broker.port;
    const producer = kafka(broker.brokers, 'producer').producer();
    await producer.connect();
    cleanups.push(() => producer.disconnect());
    const consumer = kafka(broker.brokers, 'consumer').consumer({
      groupId: 'stream-group',
      sessionTimeout: 6000,
      heartbeatInterval: 200,
      maxWaitTimeInMs: 100,
    });
    cleanups.push(() => consumer.disconnect());
    await consumer.connect();
    await consumer.subscribe({ topic: 'stream', fromBeginning: true });
    const seen = new Set<string>();
    let deliveries = 0;
    await consumer.run({
      eachMessage: async ({ message }) => {
        deliveries += 1;
        seen.add(String(message.value));
      },
    });

    const chunks = 20;
    const perChunk = 30;
    const total = chunks * perChunk;
    let restarted = false;
    for (let chunk = 0; chunk < chunks; chunk++) {
      await producer.send({
        topic: 'stream',
        messages: Array.from({ length: perChunk }, (_, i) => ({
          key: String(i % 7),
          value: String(chunk * perChunk + i),
        })),
      });
      if (chunk === chunks / 2) {
        // Half-way: wait until the consumer is busy with this stream, then restart under its feet.
        await waitFor(() => seen.size >= perChunk * 5, { message: 'consumption under way' });
        const generation = broker.group('stream-group')!.generationId;
        await broker.restart();
        restarted = true;
        expect(broker.port).toBe(portBefore);
        // Group membership and committed offsets are kept in memory across the restart.
        expect(broker.group('stream-group')!.generationId).toBe(generation);
        expect(Object.keys(broker.committed('stream-group'))).toEqual(['stream']);
      }
    }
    expect(restarted).toBe(true);
    expect(broker.produced('stream')).toHaveLength(total);

    await waitFor(() => seen.size >= total, { timeout: 20_000, message: `${total} distinct messages` });
    await waitFor(
      () => {
        const committed = broker.committed('stream-group')['stream'] ?? {};
        return broker.endOffsets('stream').every((end, i) => committed[i] === end);
      },
      { message: 'offsets committed to the end' },
    );
    expect(seen.size).toBe(total);
    expect(deliveries).toBeGreaterThanOrEqual(total);
  });

  it('keeps the log across a restart with downtime; a new client reads it from the same port', async () => {
    broker.createTopic('kept', 1);
    const producer = kafka(broker.brokers, 'producer').producer();
    await producer.connect();
    await producer.send({ topic: 'kept', messages: [{ value: 'before' }] });
    await producer.disconnect();

    await broker.restart({ downtimeMs: 50 });
    const admin = kafka(broker.brokers, 'admin').admin();
    await admin.connect();
    cleanups.push(() => admin.disconnect());
    expect(await admin.fetchTopicOffsets('kept')).toEqual([
      { partition: 0, offset: '1', high: '1', low: '0' },
    ]);
    expect(broker.produced('kept').map((r) => String(r.value))).toEqual(['before']);
  });
});
