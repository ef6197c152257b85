import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DeliveryOutcome, SourceContext } from '@connector/core';
import { core } from '../core.js';
import { registerCase } from '../registry.js';

/** One batch size against the same local function. */
export interface BatchRow {
  batchSize: number;
  messages: number;
  seconds: number;
  /** HTTP requests the function received. */
  requests: number;
  delivered: number;
}

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

/** Deliver `n` messages of 100 bytes (a push source offering whenever there is capacity) and time the drain. */
async function run(batchSize: number, n: number): Promise<BatchRow> {
  const g = await localGateway(batchSize);
  const controller = core.createController({ gatewayUrl: g.url, connectorName: 'bench' });
  const outcomes: DeliveryOutcome[] = [];
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => (done = r));
  const source = core.defineSource(() => ({
    name: 'bench',
    async start(ctx: SourceContext) {
      void (async () => {
        for (let i = 0; i < n && !ctx.signal.aborted; i++) {
          await ctx.waitForCapacity(ctx.signal);
          void ctx.deliver({ topic: 'bench', body: BODY }).then((o) => {
            outcomes.push(o);
            if (outcomes.length === n) done();
          });
        }
      })();
    },
    async stop() {},
  }))({});
  // The same in-flight capacity for both: a batch counts its messages against it.
  const connector = core.createConnector({ controller, source, maxInFlight: 1000 });
  const t = performance.now();
  await connector.start();
  await finished;
  const seconds = (performance.now() - t) / 1000;
  await connector.stop();
  await g.close();
  return {
    batchSize,
    messages: n,
    seconds,
    requests: g.requests(),
    delivered: outcomes.filter((o) => o.status === 'delivered').length,
  };
}

const rate = (r: BatchRow) => r.messages / r.seconds;

registerCase<BatchRow[]>({
  kind: 'report',
  id: 'batch',
  label: 'batch delivery: 100-byte messages, batch size 100 vs 1, same local function',
  gateway: 'none',
  async run(p) {
    const n = p.quick ? 5000 : 50_000;
    return [await run(1, n), await run(100, n)];
  },
  markdown(rows) {
    return [
      `## Batch delivery (${rows[0]?.messages} messages of 100 bytes, maxInFlight 1000, one local function)`,
      '',
      '| batch size | messages/s | requests | delivered | time s |',
      '|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.batchSize} | ${Math.round(rate(r))} | ${r.requests} | ${r.delivered} | ${r.seconds.toFixed(2)} |`,
      ),
      '',
    ];
  },
  targets(rows) {
    const one = rows[0];
    const hundred = rows[1];
    if (!one || !hundred) return [];
    return [
      {
        what: 'messages/s with batch size 100 / batch size 1',
        target: '≥ 10×',
        measured: `${(rate(hundred) / rate(one)).toFixed(1)}×`,
        met: rate(hundred) / rate(one) >= 10,
      },
      {
        what: 'every message delivered (both sizes)',
        target: 'all',
        measured: `${one.delivered + hundred.delivered} / ${one.messages + hundred.messages}`,
        met: one.delivered === one.messages && hundred.delivered === hundred.messages,
      },
    ];
  },
});
