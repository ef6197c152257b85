import type { SourceContext } from '@connector/core';
import { Pool } from 'undici';
import { core } from '../core.js';
import { closedLoop, timed, warmUp } from '../measure.js';
import { type CaseParams, registerCase } from '../registry.js';

/** The payload every throughput case sends (a typical small JSON event). */
export const body = new TextEncoder().encode('{"reading":21.5,"sensor":"kitchen"}');
const path = '/function/echo.openfaas-fn';
// The headers core sends for connectorName 'bench' (user agent, connector name, topic).
const headers = { 'user-agent': 'connector/bench', 'x-connector': 'bench', 'x-topic': 'bench' };

function fail(what: string): never {
  throw new Error(`bench: ${what}`);
}

/** A Pool configured like core's GatewayClient (128 connections, keep-alive 30 s, 30 s timeouts). */
function pool(url: string): Pool {
  return new Pool(new URL(url).origin, {
    connections: 128,
    keepAliveTimeout: 30_000,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
}

/** Bodies of the payload-size cases (the echo gateway answers with the same size). */
const sized = { '1k': new Uint8Array(1024).fill(120), '64k': new Uint8Array(64 * 1024).fill(120) } as const;

/** The ceiling: a bare `pool.request` loop reading the whole body. */
async function undiciRequest(p: CaseParams, concurrency: number, payload: Uint8Array = body) {
  const pl = pool(p.url);
  try {
    return await closedLoop(p, concurrency, async () => {
      const res = await pl.request({ path, method: 'POST', headers, body: payload });
      await res.body.arrayBuffer();
      if (res.statusCode !== 200) fail(`gateway answered ${res.statusCode}`);
    });
  } finally {
    await pl.close();
  }
}

/** undici's lower-level `dispatch` with a minimal (legacy) handler: no body stream, no header parsing. */
async function undiciDispatch(p: CaseParams, concurrency: number) {
  const pl = pool(p.url);
  const opts = { origin: new URL(p.url).origin, path, method: 'POST' as const, headers, body };
  const once = () =>
    new Promise<void>((resolve, reject) => {
      let status = 0;
      const chunks: Buffer[] = [];
      pl.dispatch(opts, {
        onConnect() {},
        onHeaders(statusCode: number) {
          status = statusCode;
          return true;
        },
        onData(chunk: Buffer) {
          chunks.push(chunk);
          return true;
        },
        onComplete() {
          Buffer.concat(chunks);
          if (status === 200) resolve();
          else reject(new Error(`bench: gateway answered ${status}`));
        },
        onError: reject,
      });
    });
  try {
    return await closedLoop(p, concurrency, once);
  } finally {
    await pl.close();
  }
}

/** `controller.invoke(topic)`: topic lookup, one invocation, result to subscribers. */
async function invoke(p: CaseParams, concurrency: number, payload: Uint8Array = body) {
  const controller = core.createController({ gatewayUrl: p.url, connectorName: 'bench' });
  await controller.start();
  if (controller.match('bench').length !== 1) fail('the bench gateway lists no function for topic bench');
  try {
    return await closedLoop(p, concurrency, async () => {
      const r = await controller.invoke('bench', payload);
      if (r.length !== 1 || r[0]?.error) fail(`invoke failed: ${r[0]?.error?.message ?? 'no result'}`);
    });
  } finally {
    await controller.stop();
  }
}

/** A connector whose source only keeps the context, so the case drives `ctx.deliver` itself. */
async function connectorWith(p: CaseParams) {
  const controller = core.createController({ gatewayUrl: p.url, connectorName: 'bench' });
  let ctx: SourceContext | undefined;
  const source = core.defineSource(() => ({
    name: 'bench',
    async start(c: SourceContext) {
      ctx = c;
    },
    async stop() {},
  }))({});
  const connector = core.createConnector({ controller, source, maxInFlight: 64 });
  await connector.start();
  if (!ctx) fail('source not started');
  if (controller.match('bench').length !== 1) fail('the bench gateway lists no function for topic bench');
  return { connector, ctx };
}

/** `ctx.deliver` from 64 loops that each await their delivery (a partitioned consumer). */
async function deliverLoops(p: CaseParams, concurrency: number) {
  const { connector, ctx } = await connectorWith(p);
  const msg = { topic: 'bench', body };
  try {
    return await closedLoop(p, concurrency, async () => {
      const o = await ctx.deliver(msg);
      if (o.status !== 'delivered') fail(`delivery ${o.status}`);
    });
  } finally {
    await connector.stop();
  }
}

/**
 * `deliverLoops` with an OpenTelemetry SDK registered in this worker (its own process: no other case sees it):
 * `memory` records every span (a consumer span per message, a client span per attempt) into an in-memory exporter,
 * emptied every second so memory stays flat; `sampled-out` registers the SDK with a sampler that records nothing,
 * so only the instrumentation's own cost (spans made, context propagated) remains. The SDK is imported here only.
 */
async function deliverTraced(p: CaseParams, mode: 'memory' | 'sampled-out') {
  const otel = await import('@opentelemetry/sdk-trace-node');
  const exporter = new otel.InMemorySpanExporter();
  const provider = new otel.NodeTracerProvider(
    mode === 'memory'
      ? { spanProcessors: [new otel.SimpleSpanProcessor(exporter)] }
      : { sampler: new otel.AlwaysOffSampler() },
  );
  provider.register();
  if (!core.tracingEnabled()) fail('the SDK did not register (two copies of @opentelemetry/api?)');
  let spans = 0;
  const drain = () => {
    spans += exporter.getFinishedSpans().length;
    exporter.reset();
  };
  const timer = setInterval(drain, 1000);
  try {
    const r = await deliverLoops(p, 64);
    drain();
    if (mode === 'memory' && spans === 0) fail('no span recorded');
    return r;
  } finally {
    clearInterval(timer);
    await provider.shutdown();
  }
}

/**
 * A push source as the real ones are written: offer the next message whenever the engine has capacity
 * (`hasCapacity` / `waitForCapacity`), never awaiting the delivery itself; latency from `deliver` to its settlement.
 */
async function deliverPush(p: CaseParams) {
  const { connector, ctx } = await connectorWith(p);
  const batch = (n: number) => (lat: Float64Array) =>
    new Promise<void>((resolve, reject) => {
      let settled = 0;
      const onSettled = (i: number, s: number) => (o: { status: string }) => {
        lat[i] = performance.now() - s;
        if (o.status !== 'delivered') reject(new Error(`bench: delivery ${o.status}`));
        else if (++settled === n) resolve();
      };
      void (async () => {
        for (let i = 0; i < n; i++) {
          if (!ctx.hasCapacity()) await ctx.waitForCapacity();
          const s = performance.now();
          ctx.deliver({ topic: 'bench', body }).then(onSettled(i, s), reject);
        }
      })().catch(reject);
    });
  try {
    await timed(warmUp(p), batch(warmUp(p)));
    return await timed(p.n, batch(p.n), p);
  } finally {
    await connector.stop();
  }
}

for (const c of [1, 64]) {
  registerCase({
    kind: 'throughput',
    id: `undici-x${c}`,
    label: `ceiling: undici request x${c}`,
    concurrency: c,
    scale: c === 1 ? 0.25 : 1,
    run: (p) => undiciRequest(p, c),
  });
}
for (const c of [1, 64]) {
  registerCase({
    kind: 'throughput',
    id: `dispatch-x${c}`,
    label: `undici dispatch x${c}`,
    concurrency: c,
    ceiling: `undici-x${c}`,
    scale: c === 1 ? 0.25 : 1,
    run: (p) => undiciDispatch(p, c),
  });
}
// invoke x3 and x16 are the ceilings of the end-to-end source rows (src/e2e.ts) whose source can reach that
// concurrency (3 Kafka partitions, 16 MQTT topics).
for (const c of [3, 16]) {
  registerCase({
    kind: 'throughput',
    id: `invoke-x${c}`,
    label: `controller.invoke x${c}`,
    concurrency: c,
    usesCore: true,
    scale: 0.5,
    run: (p) => invoke(p, c),
  });
}
for (const c of [1, 64]) {
  registerCase({
    kind: 'throughput',
    id: `invoke-x${c}`,
    label: `controller.invoke x${c}`,
    concurrency: c,
    ceiling: `undici-x${c}`,
    usesCore: true,
    scale: c === 1 ? 0.25 : 1,
    run: (p) => invoke(p, c),
  });
}
registerCase({
  kind: 'throughput',
  id: 'deliver-x64',
  label: 'deliver (engine, metrics on) x64',
  concurrency: 64,
  ceiling: 'undici-x64',
  usesCore: true,
  run: (p) => deliverLoops(p, 64),
});
registerCase({
  kind: 'throughput',
  id: 'deliver-traced-x64',
  label: 'deliver x64, tracing on (in-memory SDK)',
  concurrency: 64,
  ceiling: 'undici-x64',
  usesCore: true,
  run: (p) => deliverTraced(p, 'memory'),
});
registerCase({
  kind: 'throughput',
  id: 'deliver-traced-sampled-out-x64',
  label: 'deliver x64, SDK registered, every span sampled out',
  concurrency: 64,
  ceiling: 'undici-x64',
  usesCore: true,
  run: (p) => deliverTraced(p, 'sampled-out'),
});
registerCase({
  kind: 'throughput',
  id: 'deliver-push-x64',
  label: 'deliver, push source (waitForCapacity), maxInFlight 64',
  concurrency: 64,
  ceiling: 'undici-x64',
  usesCore: true,
  run: (p) => deliverPush(p),
});

// Payload sizes: the invoker reads a body of known length into one buffer; these show what that does at 1 KiB and
// 64 KiB, each against the bare-undici ceiling with the same payload.
for (const [size, payload] of Object.entries(sized)) {
  registerCase({
    kind: 'throughput',
    id: `undici-${size}-x64`,
    label: `ceiling: undici request x64, ${size} body`,
    concurrency: 64,
    run: (p) => undiciRequest(p, 64, payload),
  });
  registerCase({
    kind: 'throughput',
    id: `invoke-${size}-x64`,
    label: `controller.invoke x64, ${size} body`,
    concurrency: 64,
    ceiling: `undici-${size}-x64`,
    usesCore: true,
    run: (p) => invoke(p, 64, payload),
  });
}
