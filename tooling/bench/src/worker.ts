import {
  createConnector,
  createController,
  defineSource,
  type FunctionInfo,
  parseTopics,
  TopicMap,
} from '@connector/core';
import { Pool } from 'undici';
import { kafkaCase, mqttCase, sqsCase } from './sources.js';
import { quantile, type Repetition } from './stats.js';

/** Parameters a worker receives (argv[3], JSON). */
interface Params {
  url: string;
  n: number;
  concurrency: number;
  reps: number;
  seconds?: number;
}

const body = new TextEncoder().encode('{"reading":21.5,"sensor":"kitchen"}');

/** Run `n` operations with `concurrency` loops; returns a repetition with latency and CPU. */
async function measure(n: number, concurrency: number, op: () => Promise<unknown>): Promise<Repetition> {
  const lat = new Float64Array(n);
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const loop = async () => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      const s = performance.now();
      await op();
      lat[i] = performance.now() - s;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    ops: n,
    seconds,
    opsPerSec: n / seconds,
    p50Ms: quantile(lat, 0.5),
    p99Ms: quantile(lat, 0.99),
    cpuPer10k: ((cpu.user + cpu.system) / 1e6) * (10_000 / n),
  };
}

async function repeat(p: Params, op: () => Promise<unknown>): Promise<Repetition[]> {
  await measure(Math.max(200, Math.floor(p.n / 4)), p.concurrency, op); // warm-up
  const reps: Repetition[] = [];
  for (let r = 0; r < p.reps; r++) reps.push(await measure(p.n, p.concurrency, op));
  return reps;
}

const cases: Record<string, (p: Params) => Promise<unknown>> = {
  /** The ceiling: a bare undici request loop, same headers and body handling as core. */
  async undici(p) {
    const origin = new URL(p.url).origin;
    const pool = new Pool(origin, { connections: 128, keepAliveTimeout: 30_000 });
    const op = async () => {
      const res = await pool.request({
        path: '/function/echo.openfaas-fn',
        method: 'POST',
        headers: { 'user-agent': 'connector/bench', 'x-connector': 'bench', 'x-topic': 'bench' },
        body,
      });
      await res.body.arrayBuffer();
    };
    const reps = await repeat(p, op);
    await pool.close();
    return reps;
  },

  /** controller.invoke: topic lookup + one invocation, results to subscribers. */
  async invoke(p) {
    const controller = createController({ gatewayUrl: p.url, connectorName: 'bench' });
    await controller.start();
    const reps = await repeat(p, () => controller.invoke('bench', body));
    await controller.stop();
    return reps;
  },

  /** deliver through the delivery engine (metrics on) with `concurrency` concurrent deliveries. */
  async deliver(p) {
    const controller = createController({ gatewayUrl: p.url, connectorName: 'bench' });
    let deliver!: (topic: string) => Promise<unknown>;
    const source = defineSource(() => ({
      name: 'bench',
      async start(ctx) {
        deliver = (topic) => ctx.deliver({ topic, body });
      },
      async stop() {},
    }))({});
    const connector = createConnector({ controller, source, maxInFlight: 64 });
    await connector.start();
    const reps = await repeat(p, () => deliver('bench'));
    await connector.stop();
    return reps;
  },

  /** Topic matching with 100 / 1,000 / 10,000 functions: exact and MQTT wildcards, ns per lookup. */
  async match() {
    const out: Record<string, number> = {};
    for (const size of [100, 1000, 10_000]) {
      const exactFns: FunctionInfo[] = [];
      const mqttFns: FunctionInfo[] = [];
      for (let i = 0; i < size; i++) {
        const mk = (topic: string): FunctionInfo => ({
          name: `f${i}`,
          namespace: 'openfaas-fn',
          address: `f${i}.openfaas-fn`,
          topics: parseTopics(topic),
          annotations: { topic },
        });
        exactFns.push(mk(`topic-${i}`));
        mqttFns.push(mk(i % 2 === 0 ? `site/${i}/+/temp` : `site/${i}/#`));
      }
      const exact = new TopicMap(exactFns, 'exact');
      const mqtt = new TopicMap(mqttFns, 'mqtt');
      const lookups = 200_000;
      const topics = Array.from({ length: 1000 }, (_, k) => `topic-${(k * 7919) % size}`);
      const mtopics = Array.from({ length: 1000 }, (_, k) => `site/${(k * 7919) % size}/kitchen/temp`);
      let found = 0;
      let t = performance.now();
      for (let k = 0; k < lookups; k++) found += exact.match(topics[k % 1000] as string).length;
      out[`exact_${size}_ns`] = ((performance.now() - t) * 1e6) / lookups;
      t = performance.now();
      for (let k = 0; k < lookups; k++) found += mqtt.match(mtopics[k % 1000] as string).length;
      out[`mqtt_cached_${size}_ns`] = ((performance.now() - t) * 1e6) / lookups;
      // A new topic every lookup: the trie walk itself, never the per-topic cache.
      const fresh = Array.from({ length: lookups }, (_, k) => `site/${(k * 7919) % size}/r${k}/temp`);
      t = performance.now();
      for (let k = 0; k < lookups; k++) found += mqtt.match(fresh[k] as string).length;
      out[`mqtt_${size}_ns`] = ((performance.now() - t) * 1e6) / lookups;
      if (found === 0) throw new Error('no match found');
    }
    return out;
  },

  /** A stalled gateway: a source offering up to 1M messages; RSS must stay flat. */
  async stalled(p) {
    const controller = createController({
      gatewayUrl: p.url,
      connectorName: 'bench',
      upstreamTimeout: 600_000,
    });
    let offered = 0;
    let stop = false;
    const source = defineSource(() => ({
      name: 'bench',
      async start(ctx) {
        // 64 consumer loops (partitions) that each offer the next message as soon as the previous one settles.
        for (let c = 0; c < 64; c++) {
          void (async () => {
            while (!stop && offered < 1_000_000) {
              offered++;
              await ctx.deliver({ topic: 'bench', body }).catch(() => undefined);
            }
          })();
        }
      },
      async stop() {
        stop = true;
      },
    }))({});
    const connector = createConnector({ controller, source, maxInFlight: 64, drainTimeout: 0 });
    global.gc?.();
    const start = process.memoryUsage().rss;
    await connector.start();
    let peak = start;
    const seconds = p.seconds ?? 5;
    const deadline = Date.now() + seconds * 1000;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    const end = process.memoryUsage().rss;
    const inFlight = connector.inFlight();
    await connector.kill();
    const mb = (b: number) => Math.round((b / 1048576) * 10) / 10;
    return {
      seconds,
      offered,
      inFlight,
      startRssMb: mb(start),
      peakRssMb: mb(peak),
      endRssMb: mb(end),
      deltaMb: mb(peak - start),
    };
  },
};

/** Source end-to-end cases: broker -> source -> engine -> gateway. */
Object.assign(cases, {
  'source-mqtt': (p: Params) => mqttCase(p.url, p.n),
  'source-kafka': (p: Params) => kafkaCase(p.url, p.n),
  'source-sqs': (p: Params) => sqsCase(p.url, p.n),
});

const [name, raw] = process.argv.slice(2);
const run = name === undefined ? undefined : cases[name];
if (!run) {
  process.stderr.write(`unknown case ${name}; known: ${Object.keys(cases).join(', ')}\n`);
  process.exit(2);
}
run(JSON.parse(raw ?? '{}') as Params).then(
  (result) => {
    process.stdout.write(`${JSON.stringify({ result, maxRssMb: process.resourceUsage().maxRSS / 1024 })}\n`);
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
