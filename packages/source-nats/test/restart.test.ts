import { waitFor } from '@connector/testing';
import { expect, it } from 'vitest';
import { cleanup, connector, consumerInfo, gateway, nats, okBodies, publish } from './helpers/connector.js';
import { type NatsServer, startNatsServer } from './helpers/nats.js';

// A server restart needs its own nats-server: same port, same store dir.
it('reconnects after a server restart and continues: nothing lost, before or after', async () => {
  const s: NatsServer = await startNatsServer();
  cleanup.add(() => s.stop());
  const g = await gateway({ functions: [{ name: 'fn', annotations: { topic: 'rs.*' } }] });
  const { source } = await connector(g, {
    servers: s.url,
    stream: 'RS',
    consumer: 'c',
    subjects: ['rs.*'],
    ackWait: 2000,
    reconnectWait: 50,
    fetchExpires: 1000,
  });
  const pub = await nats(s.url);
  g.fault('fn', { delay: 20 });
  for (let i = 0; i < 30; i++) await publish(pub, `rs.${i % 3}`, `before-${i}`);
  await waitFor(() => okBodies(g).size >= 5);
  await s.kill();
  await waitFor(() => source.health?.().connected === false);
  await s.start();
  await waitFor(() => source.health?.().connected === true, { timeout: 20_000 });
  const pub2 = await nats(s.url);
  for (let i = 0; i < 30; i++) await publish(pub2, `rs.${i % 3}`, `after-${i}`);
  const want = [
    ...Array.from({ length: 30 }, (_, i) => `before-${i}`),
    ...Array.from({ length: 30 }, (_, i) => `after-${i}`),
  ];
  await waitFor(() => want.every((b) => okBodies(g).has(b)), {
    timeout: 25_000,
    message: () => `missing ${want.filter((b) => !okBodies(g).has(b)).join(',')}`,
  });
  await waitFor(async () => (await consumerInfo(pub2, 'RS', 'c')).num_ack_pending === 0, { timeout: 10_000 });
  expect(source.health?.().connected).toBe(true);
});
