import { createRequire } from 'node:module';
import { startKafkaBroker } from '@connector/kafka-test-broker';
import { startGateway } from '@connector/testing';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it, vi } from 'vitest';
import { connect, waitFor } from './helpers.js';

// Not kafkaSuite: its producer would install the fix first (helpers.ts); here only the source may.
describe('timers', () => {
  it('consuming sets no timer with a negative delay (Node >= 23 prints TimeoutNegativeWarning for one)', async () => {
    const queue = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js');
    expect(String(queue.prototype.scheduleCheckPendingRequests)).toContain('scheduleAt'); // kafkajs's own
    const topic = 'timers';
    const broker = await startKafkaBroker({ port: 0 });
    const g = await startGateway({ functions: [{ name: 'fn', annotations: { topic } }] });
    const { connector } = await connect(g, { brokers: broker.brokers, topics: [topic], group: 'g-timers' });
    // From here on the source's client has fixed kafkajs's request queue, this producer's included.
    const spy = vi.spyOn(globalThis, 'setTimeout');
    const producer = new Kafka({ brokers: broker.brokers, logLevel: logLevel.NOTHING }).producer();
    try {
      await producer.connect();
      await producer.send({ topic, messages: Array.from({ length: 20 }, (_, i) => ({ value: `t-${i}` })) });
      await waitFor(() => g.invocations('fn').length === 20, '20 deliveries');
      const delays = spy.mock.calls.map((c) => c[1]).filter((d): d is number => typeof d === 'number');
      expect(delays.length).toBeGreaterThan(0);
      expect(delays.filter((d) => d < 0)).toEqual([]);
    } finally {
      spy.mockRestore();
      await producer.disconnect();
      await connector.stop();
      await g.close();
      await broker.close();
    }
  });
});
