import { testSource } from '@connector/testing';
import { afterAll, beforeAll } from 'vitest';
import { kafkaSource } from '../src/index.js';
import { startKafka } from './helpers.js';

let k: Awaited<ReturnType<typeof startKafka>>;
beforeAll(async () => {
  k = await startKafka();
});
afterAll(async () => k.close());

testSource({
  name: 'kafka (test broker, kafkajs)',
  timeout: 60_000,
  prepare: async (topic) => k.broker.createTopic(topic, 4),
  createSource: ({ topic, group, run }) =>
    kafkaSource({ brokers: k.broker.brokers, topics: [topic], group, clientId: run, sessionTimeout: 6000 }),
  publish: (topic, messages) =>
    k.produce(
      topic,
      messages.map((m) => ({ value: m.body, ...(m.key ? { key: m.key } : {}) })),
    ),
});
