import { noopLogger } from '@connector/core';
import { startKafkaBroker } from '@connector/kafka-test-broker';
import { startGateway } from '@connector/testing';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { startKafkaConnector } from '../src/index.js';

describe('kafka-connector', () => {
  it('runs from the OpenFaaS env names: annotation topics, dead_letter_topic, reply_topic, commits', async () => {
    const broker = await startKafkaBroker({ port: 0, partitions: 2 });
    const gateway = await startGateway({
      functions: [
        { name: 'ok', annotations: { topic: 'payments' } },
        { name: 'bad', annotations: { topic: 'refunds' }, handler: () => ({ status: 400 }) },
      ],
    });
    const producer = new Kafka({
      clientId: 'p',
      brokers: broker.brokers,
      logLevel: logLevel.NOTHING,
    }).producer();
    try {
      broker.createTopic('payments', 2);
      broker.createTopic('refunds', 2);
      await producer.connect();
      await producer.send({ topic: 'payments', messages: [{ key: 'a', value: 'pay-1' }] });
      await producer.send({ topic: 'refunds', messages: [{ key: 'b', value: 'refund-1' }] });
      const connector = await startKafkaConnector({
        env: {
          gateway_url: gateway.url,
          http_port: '0',
          broker_host: broker.brokers[0] as string,
          group: 'app',
          session_timeout: '6s',
          dead_letter_topic: 'dead',
          reply_topic: 'replies',
        },
        signals: false,
        logger: noopLogger,
      });
      const [call] = await gateway.waitForInvocations(1, { fn: 'ok', timeout: 20_000 });
      expect(call?.body.toString()).toBe('pay-1');
      const waitFor = async (cond: () => boolean) => {
        const deadline = Date.now() + 20_000;
        while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      };
      const total = (topic: string) =>
        Object.values(broker.committed('app')[topic] ?? {}).reduce((a, b) => a + b, 0);
      await waitFor(() => total('payments') === 1 && total('refunds') === 1);
      expect(broker.produced('dead').map((r) => [r.key?.toString(), r.value?.toString()])).toEqual([
        ['b', 'refund-1'],
      ]);
      // The echo function's response, keyed like the request.
      expect(broker.produced('replies').map((r) => [r.key?.toString(), r.value?.toString()])).toEqual([
        ['a', 'pay-1'],
      ]);
      expect([total('payments'), total('refunds')]).toEqual([1, 1]);
      expect(connector.readiness()).toEqual([]);
      await connector.stop();
      expect(broker.members('app')).toHaveLength(0);
    } finally {
      await producer.disconnect();
      await gateway.close();
      await broker.close();
    }
  });

  it('fails with one line naming a missing broker', async () => {
    await expect(startKafkaConnector({ env: {}, signals: false, logger: noopLogger })).rejects.toThrow(
      'invalid brokers="": expected host:port list (set brokers or broker_host)',
    );
  });
});
