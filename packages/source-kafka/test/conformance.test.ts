import { testSource } from '@connector/testing/conformance';
import { kafkaSource } from '../src/index.js';
import { startKafka } from './helpers.js';

let k: Awaited<ReturnType<typeof startKafka>> | undefined;
const kafka = () => {
  if (!k) throw new Error('Kafka test broker not started');
  return k;
};

testSource({
  name: 'kafka (test broker, kafkajs)',
  timeout: 60_000,
  async setup() {
    k = await startKafka();
  },
  async teardown() {
    await k?.close();
  },
  prepare: async (topic) => kafka().broker.createTopic(topic, 4),
  createSource: ({ topic, group, run }) =>
    kafkaSource({
      brokers: kafka().broker.brokers,
      topics: [topic],
      group,
      clientId: run,
      sessionTimeout: 6000,
    }),
  publish: (topic, messages) =>
    kafka().produce(
      topic,
      messages.map((m) => ({ value: m.body, ...(m.key ? { key: m.key } : {}) })),
    ),
});
