import type { Connector } from '@connector/core';
import { deferred, startGateway } from '@connector/testing';
import { describe, expect, it } from 'vitest';
import { kafkaSuite, waitFor } from './helpers.js';

const { k, cleanup, consume } = kafkaSuite();

/** `connector_backlog_messages` by partition, as the registry serves it. */
async function lagByPartition(
  registry: Connector['metrics'],
  topic: string,
): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric('connector_backlog_messages')?.get();
  const out: Record<string, number> = {};
  for (const v of metric?.values ?? [])
    if (v.labels['queue'] === topic && v.labels['source'] === 'kafka')
      out[String(v.labels['partition'])] = v.value;
  return out;
}

describe('Kafka consumer lag (connector_backlog_messages)', () => {
  it('is high watermark − committed offset per partition, and drops to 0 once everything is committed', async () => {
    const topic = 'lag-events';
    // Partition 0: 3 records, 1: 2, 2: none, 3: 5.
    const counts = [3, 2, 0, 5];
    await k.produce(
      topic,
      counts.flatMap((n, partition) =>
        Array.from({ length: n }, (_, i) => ({ partition, value: `p${partition}-${i}` })),
      ),
    );
    // Held: every record of partition 1 (its first one never settles: nothing committed there) and the third of
    // partition 3 (two settle before it: committed offset 2).
    const hold = deferred<void>();
    const g = await startGateway({
      functions: [
        {
          name: 'fn',
          annotations: { topic },
          handler: async (req) => {
            const body = req.body.toString();
            if (body.startsWith('p1-') || body === 'p3-2') await hold.promise;
            return { status: 200, body };
          },
        },
      ],
    });
    cleanup.add(() => g.close());
    cleanup.add(async () => hold.resolve());
    const { connector } = await consume(
      g,
      { group: 'g-lag', topics: [topic], commitInterval: 20 },
      { backlogInterval: 20 },
    );

    await waitFor(
      () => k.broker.committed('g-lag')[topic]?.[3] === 2 && k.broker.committed('g-lag')[topic]?.[0] === 3,
      'partitions 0 and 3 committed up to the held record',
    );
    // Partition 1 has no commit: the group starts at the log start, so its lag is its 2 records.
    const expected = { '0': 0, '1': 2, '2': 0, '3': 3 };
    await waitFor(
      async () => JSON.stringify(await lagByPartition(connector.metrics, topic)) === JSON.stringify(expected),
      `lag ${JSON.stringify(expected)}`,
      15_000,
    );

    hold.resolve();
    await waitFor(
      async () => {
        const lag = await lagByPartition(connector.metrics, topic);
        return Object.values(lag).every((v) => v === 0) && Object.keys(lag).length === 4;
      },
      'lag 0 on every partition',
      15_000,
    );

    // Served on /metrics as such (the registry is what /metrics renders).
    const text = await connector.metrics.metrics();
    expect(text).toContain(`connector_backlog_messages{source="kafka",queue="${topic}",partition="3"} 0`);
  });
});
