import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SourceContext } from '@connector/core';
import { core } from '../core.js';
import { timed, warmUp } from '../measure.js';
import { type CaseParams, registerCase } from '../registry.js';
import type { Repetition } from '../stats.js';

const BODY = new Uint8Array(100).fill(0x61); // 100 bytes of text

/** A gateway with one function `batched` that answers 200 at once (empty body: every item succeeded). */
async function localGateway(batchSize: number) {
  let requests = 0;
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/system/namespaces')) return void res.writeHead(404).end();
    if (req.url?.startsWith('/system/functions')) {
      const annotations = { topic: 'bench', 'connector.dev/batch-size': String(batchSize) };
      return void res.end(JSON.stringify([{ name: 'batched', annotations }]));
    }
    req.resume();
    req.on('end', () => {
      requests++;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * A warm-up, then one measured repetition, of 100-byte messages from a push source offering whenever there is
 * capacity, to one local function with `connector.dev/batch-size` = `batchSize`; latency is per message (offered to
 * settled). Both sizes make the same number of invocations (warm-up a quarter of `p.n`, measured `p.n`), so size 100
 * carries 100× the messages: the HTTP client and the gateway warm up per request, and a warm-up counted in messages
 * left size 100 with 75 requests of warm-up and a measured repetition of 0.3 s, still speeding up (JIT tiers, heap
 * growth) when it ended. Throws when a message is not delivered or batching did not cut the requests.
 */
async function run(p: CaseParams, batchSize: number): Promise<Repetition> {
  const g = await localGateway(batchSize);
  const controller = core.createController({ gatewayUrl: g.url, connectorName: 'bench' });
  let ctx: SourceContext | undefined;
  const source = core.defineSource(() => ({
    name: 'bench',
    async start(c: SourceContext) {
      ctx = c;
    },
    async stop() {},
  }))({});
  // The same in-flight capacity for both sizes: a batch counts its messages against it.
  const connector = core.createConnector({ controller, source, maxInFlight: 1000 });
  await connector.start();
  if (ctx === undefined) throw new Error('the bench source was not started');
  const c: SourceContext = ctx;
  /** Offer `n` messages as capacity allows; resolves when all settled, writing each one's latency into `lat`. */
  const pump = (n: number) => async (lat: Float64Array) => {
    let settled = 0;
    let notDelivered = 0;
    let done: () => void = () => undefined;
    const all = new Promise<void>((r) => (done = r));
    for (let i = 0; i < n; i++) {
      if (!c.hasCapacity()) await c.waitForCapacity(c.signal);
      const s = performance.now();
      void c.deliver({ topic: 'bench', body: BODY }).then((o) => {
        lat[i] = performance.now() - s;
        if (o.status !== 'delivered') notDelivered++;
        if (++settled === n) done();
      });
    }
    await all;
    if (notDelivered > 0)
      throw new Error(`batch size ${batchSize}: ${notDelivered} of ${n} messages not delivered`);
  };
  const w = warmUp(p) * batchSize;
  await timed(w, pump(w));
  const before = g.requests();
  const n = p.n * batchSize;
  const rep = await timed(n, pump(n), p);
  const requests = g.requests() - before;
  await connector.stop();
  await g.close();
  // Batching must have cut the requests (a batch fills up whenever more than batch-size messages wait).
  if (batchSize > 1 && requests > n / 2)
    throw new Error(`batch size ${batchSize}: ${requests} requests for ${n} messages`);
  return rep;
}

// Batch size 1 is the reference row of batch size 100 (its `ceiling`): the same function, gateway and maxInFlight.
registerCase({
  kind: 'throughput',
  id: 'batch-1',
  label: 'batch delivery, size 1 (100 B messages)',
  concurrency: 1000,
  usesCore: true,
  run: (p) => run(p, 1),
});
registerCase({
  kind: 'throughput',
  id: 'batch-100',
  label: 'batch delivery, size 100 (100 B messages)',
  concurrency: 1000,
  ceiling: 'batch-1',
  usesCore: true,
  minRatio: 10,
  run: (p) => run(p, 100),
});
