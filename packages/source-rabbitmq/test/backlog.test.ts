import type { Connector } from '@connector/core';
import { createConnector, createController } from '@connector/core';
import { cleanups, startGateway, waitFor } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { rabbitmqSource } from '../src/index.js';
import { AMQP_URL, admin, unique } from './helpers/rabbit.js';

const cleanup = cleanups();
afterEach(() => cleanup.run());

/** `connector_backlog_messages` of `queue` by state, as the registry serves it. */
async function backlog(c: Connector, queue: string): Promise<Record<string, number>> {
  const metric = await c.metrics.getSingleMetric('connector_backlog_messages')?.get();
  const out: Record<string, number> = {};
  for (const v of metric?.values ?? [])
    if (v.labels['source'] === 'rabbitmq' && v.labels['queue'] === queue)
      out[String(v.labels['state'])] = v.value;
  return out;
}
const same = (a: object, b: object) => JSON.stringify(a) === JSON.stringify(b);

describe('RabbitMQ queue depth (connector_backlog_messages)', () => {
  it("is the queue's ready messages (checkQueue messageCount): those past the prefetch window, 0 once all are acked", async () => {
    const a = await admin();
    cleanup.add(() => a.close());
    const queue = a.queue(unique('depth'));
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const g = await startGateway({
      functions: [
        {
          name: 'fn',
          annotations: { topic: queue },
          handler: async () => {
            await held;
            return { status: 200, body: 'ok' };
          },
        },
      ],
    });
    cleanup.add(() => g.close());
    cleanup.add(async () => release());
    const c = createConnector({
      controller: createController({ gatewayUrl: g.url, rebuildInterval: 60_000 }),
      source: rabbitmqSource({ url: AMQP_URL, queues: [queue], prefetch: 2 }),
      drainTimeout: 5000,
      backlogInterval: 20,
    });
    cleanup.add(() => c.stop());
    await c.start();
    // Straight into the queue (default exchange); the broker hands out at most prefetch = 2, which the function
    // holds: 5 stay ready.
    for (let i = 0; i < 7; i++) await a.publish('', queue, `m-${i}`);
    await waitFor(async () => same(await backlog(c, queue), { ready: 5 }), { timeout: 15_000 });
    expect(await a.ready(queue)).toBe(5);
    release();
    await waitFor(async () => same(await backlog(c, queue), { ready: 0 }), { timeout: 15_000 });
    expect(g.invocations('fn')).toHaveLength(7);
  });
});
