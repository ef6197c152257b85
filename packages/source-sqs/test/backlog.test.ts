import type { Connector } from '@connector/core';
import { describe, expect, it } from 'vitest';
import { sqsSuite, startGateway, waitFor } from './helpers.js';

const { sqs, cleanup, consume } = sqsSuite();

/** `connector_backlog_messages` of `queue` by state, as the registry serves it. */
async function depth(connector: Connector, queue: string): Promise<Record<string, number>> {
  const metric = await connector.metrics.getSingleMetric('connector_backlog_messages')?.get();
  const out: Record<string, number> = {};
  for (const v of metric?.values ?? [])
    if (v.labels['source'] === 'sqs' && v.labels['queue'] === queue) out[String(v.labels['state'])] = v.value;
  return out;
}
const same = (a: object, b: object) => JSON.stringify(a) === JSON.stringify(b);

describe('SQS queue depth (connector_backlog_messages)', () => {
  it('an unconsumed queue: ApproximateNumberOfMessages ready, none unacked', async () => {
    const url = await sqs.createQueue('depth-idle');
    await sqs.send(
      url,
      Array.from({ length: 7 }, (_, i) => `m-${i}`),
    );
    // No function subscribes: the source does not poll, the 7 messages wait.
    const g = await startGateway({ functions: [] });
    cleanup.add(() => g.close());
    const { connector } = await consume(g, { queues: ['depth-idle'] }, { backlogInterval: 20 });
    await waitFor(
      async () => same(await depth(connector, 'depth-idle'), { ready: 7, unacked: 0 }),
      'depth 7/0',
    );
  });

  it('messages in flight count as unacked (NotVisible) until deleted; everything delivered: 0', async () => {
    const url = await sqs.createQueue('depth-busy');
    await sqs.send(
      url,
      Array.from({ length: 7 }, (_, i) => `m-${i}`),
    );
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const g = await startGateway({
      functions: [
        {
          name: 'fn',
          annotations: { topic: 'depth-busy' },
          handler: async () => {
            await held;
            return { status: 200, body: 'ok' };
          },
        },
      ],
    });
    cleanup.add(() => g.close());
    cleanup.add(async () => release());
    const { connector, source } = await consume(
      g,
      { queues: ['depth-busy'], maxMessages: 2 },
      { backlogInterval: 20, maxInFlight: 2 },
    );
    // Held: what the source received stays invisible, the rest ready; none is lost from the count.
    await waitFor(async () => {
      const d = await depth(connector, 'depth-busy');
      const received = source.stats().received;
      return received > 0 && same(d, { ready: 7 - received, unacked: received });
    }, 'depth: received ones unacked, the rest ready');
    release();
    await waitFor(
      async () => same(await depth(connector, 'depth-busy'), { ready: 0, unacked: 0 }),
      'depth 0/0',
    );
    expect(g.invocations('fn')).toHaveLength(7);
  });
});
