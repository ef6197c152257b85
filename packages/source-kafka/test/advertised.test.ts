import { startKafkaBroker } from '@connector/kafka-test-broker';
import { memoryLogger, startGateway } from '@connector/testing';
import { describe, expect, it } from 'vitest';
import { connect, waitFor } from './helpers.js';

describe('a cluster whose advertised listener is wrong', () => {
  it('says the unreachable address came from the cluster, not from brokers', {
    timeout: 90_000,
  }, async () => {
    // The bootstrap broker answers, but names port 1 of loopback (nothing listens) as the broker's address, as a
    // container advertising its own name or an internal address does.
    const broker = await startKafkaBroker({ port: 0, advertised: { host: '127.0.0.1', port: 1 } });
    const g = await startGateway({ functions: [{ name: 'fn', annotations: { topic: 'adv' } }] });
    const logger = memoryLogger();
    const { connector, source } = await connect(g, { brokers: broker.brokers, topics: ['adv'] }, { logger });
    try {
      await waitFor(() => source.health?.().lastError !== undefined, 'the consumer error', 60_000);
      const expected =
        'Kafka consumer of adv: Connection error: connect ECONNREFUSED 127.0.0.1:1 (127.0.0.1:1 is where the ' +
        `cluster says a broker is, not one of brokers=${broker.brokers[0]}: check the brokers' advertised.listeners)`;
      expect(source.health?.().lastError).toBe(expected);
      expect(logger.lines.find((l) => l.level === 'warn')?.obj).toMatchObject({ err: expected });
    } finally {
      await connector.stop();
      await g.close();
      await broker.close();
    }
  });
});
