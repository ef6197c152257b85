import type { Connector } from '@connector/core';
import { waitFor } from '@connector/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connector, consumerInfo, gateway, nats, publish, unique } from './helpers/connector.js';
import { type NatsServer, startNatsServer } from './helpers/nats.js';

let server: NatsServer;
beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server.stop();
});

/** `connector_backlog_messages` of `queue` by state, as the registry serves it. */
async function backlog(c: Connector, queue: string): Promise<Record<string, number>> {
  const metric = await c.metrics.getSingleMetric('connector_backlog_messages')?.get();
  const out: Record<string, number> = {};
  for (const v of metric?.values ?? [])
    if (v.labels['source'] === 'nats' && v.labels['queue'] === queue)
      out[String(v.labels['state'])] = v.value;
  return out;
}
const same = (a: object, b: object) => JSON.stringify(a) === JSON.stringify(b);

describe('JetStream consumer backlog (connector_backlog_messages)', () => {
  it('is num_pending (ready) and num_ack_pending (unacked) of the durable consumer, 0 once all are acked', async () => {
    const p = unique('lag');
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const g = await gateway({
      functions: [
        {
          name: 'fn',
          annotations: { topic: p },
          handler: async () => {
            await held;
            return { status: 200, body: 'ok' };
          },
        },
      ],
    });
    const nc = await nats(server.url);
    const { connector: c } = await connector(
      g,
      { servers: server.url, stream: p, consumer: 'c', subjects: [p], maxAckPending: 2 },
      { backlogInterval: 20 },
    );
    for (let i = 0; i < 7; i++) await publish(nc, p, `m-${i}`);
    // The server hands out at most max_ack_pending = 2; the function holds them: 5 wait, 2 are unacked.
    const queue = `${p}/c`;
    await waitFor(async () => same(await backlog(c, queue), { ready: 5, unacked: 2 }), {
      timeout: 15_000,
    });
    const ci = await consumerInfo(nc, p, 'c');
    expect([ci.num_pending, ci.num_ack_pending]).toEqual([5, 2]);
    release();
    await waitFor(async () => same(await backlog(c, queue), { ready: 0, unacked: 0 }), { timeout: 15_000 });
  });
});
