import type { SourceContext } from '@connector/core';
import { core } from '../core.js';
import { registerCase } from '../registry.js';

const encoder = new TextEncoder();
const mb = (b: number) => Math.round((b / 1048576) * 10) / 10;

/** RSS over a run against a gateway that never answers. */
export interface StalledResult {
  seconds: number;
  /** Messages the source could offer (generated lazily, only when the engine had capacity). */
  limit: number;
  offered: number;
  inFlight: number;
  samples: number;
  startRssMb: number;
  peakRssMb: number;
  endRssMb: number;
  deltaMb: number;
}

/** Memory of deliveries queued by a source that ignores capacity. */
export interface EagerResult {
  queued: number;
  inFlight: number;
  heapDeltaMb: number;
  rssDeltaMb: number;
  bytesPerQueuedDelivery: number;
}

/** A connector against the hanging gateway whose source is `start`. */
async function stalledConnector(url: string, start: (ctx: SourceContext) => void) {
  const controller = core.createController({
    gatewayUrl: url,
    connectorName: 'bench',
    upstreamTimeout: 600_000,
  });
  const source = core.defineSource(() => ({
    name: 'bench',
    async start(ctx: SourceContext) {
      start(ctx);
    },
    async stop() {},
  }))({});
  return core.createConnector({ controller, source, maxInFlight: 64, drainTimeout: 0 });
}

registerCase<StalledResult>({
  kind: 'report',
  id: 'stalled',
  label: 'stalled gateway',
  gateway: 'hang',
  nodeArgs: ['--expose-gc'],
  async run(p) {
    const limit = 1_000_000;
    let offered = 0;
    // A push source as the real ones are written: the next message is made only when the engine has capacity.
    const connector = await stalledConnector(p.url, (ctx) => {
      void (async () => {
        while (offered < limit && !ctx.signal.aborted) {
          if (!ctx.hasCapacity()) await ctx.waitForCapacity(ctx.signal);
          if (ctx.signal.aborted) return;
          const body = encoder.encode(`{"seq":${offered},"sensor":"kitchen"}`);
          offered++;
          ctx.deliver({ topic: 'bench', body, id: String(offered) }).catch(() => undefined);
        }
      })();
    });
    global.gc?.();
    const start = process.memoryUsage().rss;
    await connector.start();
    let peak = start;
    let samples = 0;
    const deadline = Date.now() + p.seconds * 1000;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      peak = Math.max(peak, process.memoryUsage().rss);
      samples++;
    }
    const end = process.memoryUsage().rss;
    const inFlight = connector.inFlight();
    await connector.kill();
    return {
      seconds: p.seconds,
      limit,
      offered,
      inFlight,
      samples,
      startRssMb: mb(start),
      peakRssMb: mb(peak),
      endRssMb: mb(end),
      deltaMb: mb(peak - start),
    };
  },
  markdown(r) {
    return [
      '## Stalled gateway (RSS must stay flat)',
      '',
      `A push source offering up to ${r.limit.toLocaleString('en')} messages, made only when the engine has capacity; ` +
        `the gateway never answers. Over ${r.seconds} s (${r.samples} samples): ${r.offered} offered, ${r.inFlight} in flight, ` +
        `RSS ${r.startRssMb} → peak ${r.peakRssMb} → end ${r.endRssMb} MB: **+${r.deltaMb} MB** (target: within 50 MB).`,
      '',
    ];
  },
  targets: (r) => [
    {
      what: `stalled gateway: RSS growth over ${r.seconds} s (${r.offered} offered)`,
      target: '≤ 50 MB',
      measured: `${r.deltaMb} MB`,
      met: r.deltaMb <= 50,
    },
  ],
});

registerCase<EagerResult>({
  kind: 'report',
  id: 'stalled-eager',
  label: 'stalled gateway, source ignoring capacity',
  gateway: 'hang',
  nodeArgs: ['--expose-gc'],
  async run(p) {
    const queued = p.quick ? 2_000 : 100_000;
    let ctx!: SourceContext;
    const connector = await stalledConnector(p.url, (c) => {
      ctx = c;
    });
    await connector.start();
    global.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    const rss0 = process.memoryUsage().rss;
    for (let i = 0; i < queued; i++) {
      const body = encoder.encode(`{"seq":${i},"sensor":"kitchen"}`);
      ctx.deliver({ topic: 'bench', body, id: String(i) }).catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 200));
    global.gc?.();
    const heap = process.memoryUsage().heapUsed - heap0;
    const rss = process.memoryUsage().rss - rss0;
    const inFlight = connector.inFlight();
    await connector.kill();
    return {
      queued,
      inFlight,
      heapDeltaMb: mb(heap),
      rssDeltaMb: mb(rss),
      bytesPerQueuedDelivery: Math.round(heap / queued),
    };
  },
  markdown(r) {
    return [
      '## Stalled gateway, a source that ignores capacity (information, no target)',
      '',
      `${r.queued.toLocaleString('en')} deliveries handed to the engine at once (${r.inFlight} in flight, the rest waiting for a slot): ` +
        `heap +${r.heapDeltaMb} MB, RSS +${r.rssDeltaMb} MB, about ${r.bytesPerQueuedDelivery} bytes per waiting delivery (message included). ` +
        'The engine does not bound what waits: sources must respect `hasCapacity()` / `waitForCapacity()`.',
      '',
    ];
  },
});
