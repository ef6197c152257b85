import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DeliveryOutcome, SourceContext } from '@connector/core';
import { core } from '../core.js';
import { registerCase } from '../registry.js';

/** One way of delivering to a function that admits a few calls at a time. */
export interface AdaptiveRow {
  mode: string;
  messages: number;
  seconds: number;
  /** 429 answers the function gave. */
  rejected: number;
  deadLettered: number;
  failed: number;
}

/** A gateway with one function that runs `admits` calls at once for `ms` each and answers 429 above that. */
async function limitedGateway(admits: number, ms: number) {
  let running = 0;
  let rejected = 0;
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/system/namespaces')) return void res.writeHead(404).end();
    if (req.url?.startsWith('/system/functions')) {
      const annotations = { topic: 'bench' };
      return void res.end(JSON.stringify([{ name: 'limited', annotations }]));
    }
    req.resume();
    req.on('end', () => {
      if (running >= admits) {
        rejected++;
        return void res.writeHead(429).end();
      }
      running++;
      setTimeout(() => {
        running--;
        res.end('ok');
      }, ms);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    rejected: () => rejected,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Deliver `n` messages (a push source offering whenever there is capacity) and time the drain. */
async function drain(mode: string, n: number, options: Record<string, unknown>): Promise<AdaptiveRow> {
  const g = await limitedGateway(5, 20);
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
          void ctx.deliver({ topic: 'bench', body: new Uint8Array(8) }).then((o) => {
            outcomes.push(o);
            if (outcomes.length === n) done();
          });
        }
      })();
    },
    async stop() {},
  }))({});
  const connector = core.createConnector({ controller, source, maxInFlight: 64, ...options });
  const t = performance.now();
  await connector.start();
  await finished;
  const seconds = (performance.now() - t) / 1000;
  await connector.stop();
  await g.close();
  return {
    mode,
    messages: n,
    seconds,
    rejected: g.rejected(),
    deadLettered: outcomes.filter((o) => o.status === 'dead-lettered').length,
    failed: outcomes.filter((o) => o.status === 'failed').length,
  };
}

registerCase<AdaptiveRow[]>({
  kind: 'report',
  id: 'adaptive',
  label: 'adaptive concurrency vs fixed limits (a function admitting 5 calls of 20 ms, 429 above)',
  gateway: 'none',
  async run(p) {
    const n = p.quick ? 200 : 5000;
    // The default back-off (100 ms doubling to 10 s), with attempts enough that no mode loses or dead-letters.
    const retry = { maxRetries: 10_000, minDelay: 100, maxDelay: 10_000 };
    return [
      await drain('fixed 64, retries on 429', n, { retry, onFailure: 'dead-letter' }),
      await drain('fixed 5 per function (the ideal)', n, {
        retry,
        maxInFlightPerFunction: 5,
        onFailure: 'dead-letter',
      }),
      await drain('adaptive (AIMD)', n, { retry, adaptiveConcurrency: true, onFailure: 'dead-letter' }),
    ];
  },
  markdown(rows) {
    const ideal = rows.find((r) => r.mode.startsWith('fixed 5'))?.seconds ?? Number.NaN;
    return [
      `## Adaptive concurrency (${rows[0]?.messages} messages, maxInFlight 64, a function admitting 5 calls of 20 ms)`,
      '',
      '| mode | time to drain s | × ideal | 429 answers | dead-lettered | failed |',
      '|---|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.mode} | ${r.seconds.toFixed(2)} | ${(r.seconds / ideal).toFixed(2)} | ${r.rejected} | ${r.deadLettered} | ${r.failed} |`,
      ),
      '',
    ];
  },
  targets(rows) {
    const fixed = rows[0];
    const ideal = rows[1];
    const adaptive = rows[2];
    if (!fixed || !ideal || !adaptive) return [];
    return [
      {
        what: 'adaptive time to drain / the ideal fixed limit',
        target: '≤ 1.25×',
        measured: `${(adaptive.seconds / ideal.seconds).toFixed(2)}×`,
        met: adaptive.seconds / ideal.seconds <= 1.25,
      },
      {
        what: 'fixed 64 with retries / adaptive',
        target: '≥ 1.5×',
        measured: `${(fixed.seconds / adaptive.seconds).toFixed(2)}×`,
        met: fixed.seconds / adaptive.seconds >= 1.5,
      },
      {
        what: 'adaptive: nothing lost or dead-lettered',
        target: '0',
        measured: `${adaptive.deadLettered + adaptive.failed}`,
        met: adaptive.deadLettered + adaptive.failed === 0 && adaptive.messages > 0,
      },
    ];
  },
});
