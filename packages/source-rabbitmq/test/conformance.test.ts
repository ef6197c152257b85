import { type SourceHarness, testSource } from '@connector/testing/conformance';
import { type RabbitmqSource, rabbitmqSource } from '../src/index.js';
import { type Admin, AMQP_URL, admin, unique } from './helpers/rabbit.js';

/** The shared source contract against the real RabbitMQ: one queue per test, bound to an exchange of its own. */
function harness(): SourceHarness<RabbitmqSource> {
  let a: Admin | undefined;
  const exchange = unique('conformance-x');
  const client = () => {
    if (!a) throw new Error('not set up');
    return a;
  };
  return {
    name: 'rabbitmq',
    async setup() {
      a = await admin();
      a.exchange(exchange);
      await a.channel.assertExchange(exchange, 'topic', { durable: true });
    },
    async teardown() {
      await a?.close();
    },
    async prepare(topic) {
      // the queue exists (and is bound) before the first publish, as it would in production
      const c = client();
      const queue = c.queue(`q.${topic}`);
      await c.channel.assertQueue(queue, { durable: true });
      await c.channel.bindQueue(queue, exchange, topic);
    },
    createSource: ({ topic }) =>
      rabbitmqSource({
        url: AMQP_URL,
        queue: `q.${topic}`,
        exchange,
        prefetch: 16,
        redeliveryDelay: { min: 20, max: 100 },
        reconnectDelay: { min: 20, max: 200 },
      }),
    // the prefetch window is the most the broker hands out while the connector has no capacity
    intakeLimit: 16,
    async publish(topic, messages) {
      for (const m of messages) await client().publish(exchange, topic, m.body);
    },
  };
}

testSource(harness());
