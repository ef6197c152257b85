import {
  type Connector,
  type ConnectorOptions,
  type Controller,
  createConnector,
  createController,
} from '@connector/core';
import { startKafkaBroker } from '@connector/kafka-test-broker';
import type { TestGateway } from '@connector/testing';
import { Kafka, logLevel } from 'kafkajs';
import { type KafkaClient, type KafkaSource, type KafkaSourceOptions, kafkaSource } from '../src/index.js';

/** Start the wire-protocol test broker and a producer. */
export async function startKafka() {
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
    async close() {
      await producer.disconnect();
      await broker.close();
    },
  };
}

/** Poll until `cond` holds or fail after `timeout` ms. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeout = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A connector with a Kafka source against a test gateway. */
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
    ...opts,
    retry: { minDelay: 1, maxDelay: 5, ...opts.retry },
  });
  await connector.start();
  return { connector, source: s, controller };
}

/** A promise with its resolve function, to hold a function's answer until the test says so. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** `count` records on each of `partitions` partitions, valued `<prefix>p<partition>-<index>`. */
export function perPartition(prefix: string, partitions: number, count: number) {
  return Array.from({ length: partitions * count }, (_, i) => {
    const partition = Math.floor(i / count);
    return { partition, key: `k${i}`, value: `${prefix}p${partition}-${i % count}` };
  });
}
