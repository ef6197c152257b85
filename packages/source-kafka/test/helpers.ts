import {
  type Connector,
  type ConnectorOptions,
  type Controller,
  createConnector,
  createController,
} from '@connector/core';
import { startKafkaBroker } from '@connector/kafka-test-broker';
import { type Cleanups, cleanups, lateBound, type TestGateway, waitFor as wait } from '@connector/testing';
import { type Admin, Kafka, logLevel, type ProducerRecord } from 'kafkajs';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { type KafkaClient, type KafkaSource, type KafkaSourceOptions, kafkaSource } from '../src/index.js';
import { fixRequestQueueTimer } from '../src/request-queue-timer.js';

/** Start the wire-protocol test broker and a producer. */
export async function startKafka() {
  fixRequestQueueTimer(); // before the test's own kafkajs clients: no TimeoutNegativeWarning from them on Node 23+
  const broker = await startKafkaBroker({ port: 0, partitions: 4 });
  const kafka = new Kafka({ clientId: 'test-producer', brokers: broker.brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  return {
    broker,
    async produce(
      topic: string,
      messages: {
        key?: string;
        value: string;
        partition?: number;
        headers?: Record<string, string | Buffer>;
      }[],
    ) {
      broker.createTopic(topic, 4);
      await producer.send({ topic, messages });
    },
    /** kafkajs's `producer.send` as it is (compression, acks), to a topic of 4 partitions. */
    async send(record: ProducerRecord) {
      broker.createTopic(record.topic, 4);
      await producer.send(record);
    },
    async close() {
      await producer.disconnect();
      await broker.close();
    },
  };
}

/** `waitFor` of @connector/testing with a 30 s default, failing with `what` (and the last value seen). */
export const waitFor = <T>(cond: () => T | Promise<T>, what: string | (() => string), timeout = 30_000) =>
  wait(cond, { message: what, timeout });

/** A connector with a Kafka source against a test gateway (dead letters to the source's `deadLetterTopic`, if set). */
export async function connect(
  gateway: TestGateway,
  source: KafkaSourceOptions & { client?: KafkaClient },
  opts: Partial<ConnectorOptions> = {},
): Promise<{ connector: Connector; source: KafkaSource; controller: Controller }> {
  const controller = createController({ gatewayUrl: gateway.url, rebuildInterval: 60_000 });
  const s = kafkaSource({ sessionTimeout: 6000, ...source });
  const connector = createConnector({
    controller,
    source: s,
    drainTimeout: 5000,
    ...(s.deadLetter ? { deadLetter: s.deadLetter } : {}),
    ...opts,
    retry: { minDelay: 1, maxDelay: 5, ...opts.retry },
  });
  await connector.start();
  return { connector, source: s, controller };
}

/** `count` records on each of `partitions` partitions, valued `<prefix>p<partition>-<index>`. */
export function perPartition(prefix: string, partitions: number, count: number) {
  return Array.from({ length: partitions * count }, (_, i) => {
    const partition = Math.floor(i / count);
    return { partition, key: `k${i}`, value: `${prefix}p${partition}-${i % count}` };
  });
}

type TestKafka = Awaited<ReturnType<typeof startKafka>>;

/**
 * The test file's broker and producer `k` (started in `beforeAll`, closed in `afterAll`), a `cleanup` stack run after
 * each test, `consume` (a connector on `k`, stopped after the test) and, with `admin`, `committedByAdmin`.
 */
export function kafkaSuite(options: { admin?: boolean } = {}) {
  let started: TestKafka | undefined;
  let admin: Admin | undefined;
  const cleanup: Cleanups = cleanups();
  beforeAll(async () => {
    started = await startKafka();
    if (!options.admin) return;
    admin = new Kafka({
      clientId: 'test-admin',
      brokers: started.broker.brokers,
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.disconnect();
    await started?.close();
  });
  afterEach(() => cleanup.run());
  const k = lateBound(() => started, 'the test broker (started in beforeAll)');
  return {
    k,
    cleanup,
    /** `connect` with `brokers` of `k`; the connector is stopped after the test. */
    async consume(
      gateway: TestGateway,
      source: Omit<KafkaSourceOptions, 'brokers'> & { client?: KafkaClient },
      opts: Partial<ConnectorOptions> = {},
    ) {
      const c = await connect(gateway, { brokers: k.broker.brokers, ...source }, opts);
      cleanup.add(() => c.connector.stop());
      return c;
    },
    /** The group's committed offsets of `topic` through kafkajs admin (partition -> next offset to consume; -1: none). */
    async committedByAdmin(group: string, topic: string): Promise<Record<number, number>> {
      if (!admin) throw new Error('kafkaSuite({ admin: true }) connects the admin');
      const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      return Object.fromEntries((t?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    },
  };
}
