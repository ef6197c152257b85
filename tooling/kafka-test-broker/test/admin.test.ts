import type { Admin } from 'kafkajs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type KafkaTestBroker, startKafkaBroker } from '../src/index.js';
import { kafka, waitFor } from './helpers.js';

let broker: KafkaTestBroker;
let admin: Admin;
const cleanups: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  broker = await startKafkaBroker({ partitions: 2 });
  admin = kafka(broker.brokers, 'admin').admin();
  await admin.connect();
  cleanups.push(() => admin.disconnect());
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await broker.close();
});

describe('admin', () => {
  it('creates topics, describes them and refuses what a single broker cannot do', async () => {
    await expect(
      admin.createTopics({
        topics: [{ topic: 'three', numPartitions: 3 }, { topic: 'default-count' }],
      }),
    ).resolves.toBe(true);
    await expect(admin.createTopics({ topics: [{ topic: 'three', numPartitions: 3 }] })).resolves.toBe(false);
    await expect(
      admin.createTopics({ topics: [{ topic: 'replicated', numPartitions: 1, replicationFactor: 3 }] }),
    ).rejects.toThrow(/Topic creation errors/);
    await expect(admin.createTopics({ topics: [{ topic: 'bad name!' }] })).rejects.toThrow(
      /Topic creation errors/,
    );
    await expect(
      admin.createTopics({ validateOnly: true, waitForLeaders: false, topics: [{ topic: 'dry-run' }] }),
    ).resolves.toBe(true);

    expect((await admin.listTopics()).sort()).toEqual(['default-count', 'three']);
    const { topics } = await admin.fetchTopicMetadata({ topics: ['three', 'default-count'] });
    const three = topics.find((t) => t.name === 'three')!;
    expect(three.partitions.map((p) => p.partitionId).sort()).toEqual([0, 1, 2]);
    for (const p of three.partitions) {
      expect(p).toMatchObject({
        partitionErrorCode: 0,
        leader: 0,
        replicas: [0],
        isr: [0],
        offlineReplicas: [],
      });
    }
    expect(topics.find((t) => t.name === 'default-count')!.partitions).toHaveLength(2);

    const cluster = await admin.describeCluster();
    expect(cluster.brokers).toEqual([{ nodeId: 0, host: '127.0.0.1', port: broker.port }]);
    expect(cluster.controller).toBe(0);

    await admin.deleteTopics({ topics: ['default-count'] });
    expect(await admin.listTopics()).toEqual(['three']);
    expect(broker.topics()).toEqual(['three']);
  });

  it('lists offsets (earliest, latest, by timestamp) and fetches, sets and describes group offsets', async () => {
    broker.createTopic('events', 2);
    const producer = kafka(broker.brokers, 'producer').producer();
    await producer.connect();
    cleanups.push(() => producer.disconnect());
    const base = 1_700_000_000_000;
    await producer.send({
      topic: 'events',
      messages: Array.from({ length: 10 }, (_, i) => ({
        value: `m${i}`,
        partition: i % 2,
        timestamp: String(base + i * 1000),
      })),
    });

    const offsets = await admin.fetchTopicOffsets('events');
    expect(offsets.sort((a, b) => a.partition - b.partition)).toEqual([
      { partition: 0, offset: '5', high: '5', low: '0' },
      { partition: 1, offset: '5', high: '5', low: '0' },
    ]);
    // m6 (partition 0, offset 3) is the first record at or after base + 5500 there; m7 (offset 3) on partition 1.
    const byTime = await admin.fetchTopicOffsetsByTimestamp('events', base + 5500);
    expect(byTime.sort((a, b) => a.partition - b.partition)).toEqual([
      { partition: 0, offset: '3' },
      { partition: 1, offset: '3' },
    ]);

    const consumer = kafka(broker.brokers, 'consumer').consumer({
      groupId: 'readers',
      sessionTimeout: 6000,
      heartbeatInterval: 300,
      maxWaitTimeInMs: 100,
    });
    cleanups.push(() => consumer.disconnect());
    await consumer.connect();
    await consumer.subscribe({ topic: 'events', fromBeginning: true });
    let count = 0;
    await consumer.run({ eachMessage: async () => void count++ });
    await waitFor(() => count === 10 && broker.committed('readers')['events']?.[1] === 5, {
      message: 'all consumed',
    });

    const described = await admin.describeGroups(['readers']);
    expect(described.groups[0]).toMatchObject({
      groupId: 'readers',
      state: 'Stable',
      protocolType: 'consumer',
    });
    expect(described.groups[0]!.members).toHaveLength(1);
    expect(described.groups[0]!.members[0]!.clientId).toBe('consumer');
    expect((await admin.listGroups()).groups).toEqual([{ groupId: 'readers', protocolType: 'consumer' }]);

    const fetched = await admin.fetchOffsets({ groupId: 'readers', topics: ['events'] });
    expect(fetched).toHaveLength(1);
    expect(fetched[0]!.partitions.sort((a, b) => a.partition - b.partition)).toEqual([
      { partition: 0, offset: '5', metadata: null },
      { partition: 1, offset: '5', metadata: null },
    ]);

    // A running group refuses offsets from outside; an empty one accepts them (kafkajs' setOffsets joins the
    // group itself and leaves after one fetch round of its default 5 s maxWaitTime).
    await expect(
      admin.setOffsets({ groupId: 'readers', topic: 'events', partitions: [{ partition: 0, offset: '1' }] }),
    ).rejects.toThrow();
    await consumer.disconnect();
    expect(broker.group('readers')?.state).toBe('Empty');
    await admin.setOffsets({
      groupId: 'readers',
      topic: 'events',
      partitions: [{ partition: 0, offset: '1' }],
    });
    expect(broker.committed('readers')).toEqual({ events: { 0: 1, 1: 5 } });

    expect(await admin.deleteGroups(['readers'])).toEqual([{ groupId: 'readers', errorCode: 0 }]);
    expect(broker.group('readers')).toBeUndefined();
    expect(await admin.fetchOffsets({ groupId: 'readers', topics: ['events'] })).toEqual([
      {
        topic: 'events',
        partitions: [
          { partition: 0, offset: '-1', metadata: null },
          { partition: 1, offset: '-1', metadata: null },
        ],
      },
    ]);
  });
});
