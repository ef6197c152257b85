import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { memoryLogger } from '@connector/testing';
import type { DeadLetter } from '../src/dead-letters.js';
import {
  type ConnectorOptions,
  type ControllerOptions,
  createConnector,
  createController,
  type DeliveryOutcome,
  defineSource,
  type InvokeResult,
  isShutdownError,
  type Logger,
  type SourceContext,
  type SourceMessage,
} from '../src/index.js';

export { freePort } from '@connector/testing';

/** Poll `cond` until it returns a truthy value or `timeout` ms pass. */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  opts: { timeout?: number; message?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeout ?? 10_000);
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${opts.message ?? cond.toString()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A promise with its resolve function, to hold a function handler until the test lets it go. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/** A local HTTP server recording POSTs (an async callback receiver). */
export async function startReceiver(): Promise<{
  url: string;
  received: { headers: IncomingMessage['headers']; body: string }[];
  close(): Promise<void>;
}> {
  const received: { headers: IncomingMessage['headers']; body: string }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/callback`,
    received,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** An in-memory broker queue for engine tests: redelivers what was not acked, respects capacity. */
export function memorySource(name = 'memory') {
  const queue: SourceMessage[] = [];
  const acked: SourceMessage[] = [];
  const notAcked: SourceMessage[] = [];
  const outcomes: DeliveryOutcome[] = [];
  const shutdownRejected: SourceMessage[] = [];
  let ctx: SourceContext | undefined;
  let wake: (() => void) | undefined;
  let pumping: Promise<void> | undefined;
  const inflight = new Set<Promise<void>>();
  let starts = 0;
  let failStarts = 0;

  const handle = async (m: SourceMessage, c: SourceContext) => {
    try {
      const outcome = await c.deliver(m);
      outcomes.push(outcome);
      if (outcome.ack) acked.push(m);
      else {
        notAcked.push(m);
        queue.push(m); // broker redelivery
        wake?.();
      }
    } catch (err) {
      if (isShutdownError(err)) shutdownRejected.push(m);
      else throw err;
    }
  };

  const pump = async (c: SourceContext) => {
    while (!c.signal.aborted) {
      const m = queue.shift();
      if (!m) {
        await new Promise<void>((r) => (wake = r));
        continue;
      }
      await c.waitForCapacity(c.signal);
      if (c.signal.aborted) {
        queue.unshift(m);
        break;
      }
      const p = handle(m, c).finally(() => inflight.delete(p));
      inflight.add(p);
      // Let the engine take the slot before looking at capacity again.
      await Promise.resolve();
    }
  };

  const source = defineSource(() => ({
    name,
    async start(c: SourceContext) {
      starts++;
      if (failStarts > 0) {
        failStarts--;
        throw new Error('broker unreachable');
      }
      ctx = c;
      c.signal.addEventListener('abort', () => wake?.());
      pumping = pump(c);
    },
    async stop() {
      wake?.();
      await pumping;
      await Promise.all([...inflight]);
      ctx = undefined;
    },
    health: () => ({ connected: ctx !== undefined }),
  }))({});

  return {
    source,
    push(...messages: SourceMessage[]) {
      queue.push(...messages);
      wake?.();
    },
    failNextStarts(n: number) {
      failStarts = n;
    },
    get ctx() {
      return ctx;
    },
    get starts() {
      return starts;
    },
    queue,
    acked,
    notAcked,
    outcomes,
    shutdownRejected,
  };
}

/** Parse Prometheus text exposition into `name{labels}` -> value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return out;
}

/**
 * A connector (controller + engine + a memory source, no retries) against the gateway at `gatewayUrl`, started;
 * `cleanup` receives its kill. For tests of how the controller reaches the gateway (TLS, identity).
 */
export async function memoryConnector(
  gatewayUrl: string,
  options: Partial<ControllerOptions>,
  cleanup: (fn: () => Promise<unknown>) => void,
  logger?: Logger,
) {
  const controller = createController({ gatewayUrl, ...options, ...(logger ? { logger } : {}) });
  const mem = memorySource();
  const connector = createConnector({
    controller,
    source: mem.source,
    retry: { maxRetries: 0 },
    ...(logger ? { logger } : {}),
  });
  await connector.start();
  cleanup(() => connector.kill());
  return { controller, connector, mem };
}

/**
 * A started connector on a memory source that records what happens: every published result, every dead letter
 * and every log line; retries fast (1–5 ms) unless `connector.retry` says otherwise. `cleanup` receives its stop.
 */
export async function recordingConnector(
  gatewayUrl: string,
  options: { controller?: Partial<ControllerOptions>; connector?: Partial<ConnectorOptions> },
  cleanup: (fn: () => Promise<unknown>) => void,
) {
  const log = memoryLogger();
  const controller = createController({
    gatewayUrl,
    rebuildInterval: 60_000,
    logger: log,
    ...options.controller,
  });
  const mem = memorySource();
  const results: InvokeResult[] = [];
  const letters: DeadLetter[] = [];
  controller.subscribe((r) => results.push(r));
  const opts = options.connector ?? {};
  const connector = createConnector({
    controller,
    source: mem.source,
    deadLetter: (l) => {
      letters.push(l);
    },
    logger: log,
    ...opts,
    retry: { minDelay: 1, maxDelay: 5, ...opts.retry },
  });
  cleanup(() => connector.stop());
  await connector.start();
  return { controller, mem, connector, results, letters, log };
}
