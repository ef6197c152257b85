import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryLogger, startGateway, type TestGateway } from '@connector/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createConnector,
  createController,
  createInvoker,
  DEFAULT_MAX_TOPIC_MAP_ENTRIES,
  type InvokeResult,
} from '../src/index.js';
import { memorySource, waitFor } from './helpers.js';

// Slow or hostile peers: a gateway that trickles, answers too much, or lists a bad function entry must cost a
// request its deadline and nothing more.

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function gateway(...args: Parameters<typeof startGateway>): Promise<TestGateway> {
  const g = await startGateway(...args);
  cleanups.push(() => g.close());
  return g;
}

/** An HTTP server whose handler decides per request; closed (held responses included) after the test. */
async function server(handle: (path: string, res: ServerResponse) => void): Promise<string> {
  const s: Server = createServer((req, res) => handle(req.url ?? '/', res));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    for (const t of trickles) clearInterval(t);
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  });
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

const trickles = new Set<NodeJS.Timeout>();
/** Answer 200 with headers at once, then one byte every `every` ms, for ever. */
function trickle(res: ServerResponse, every = 200): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write('[');
  const t = setInterval(() => res.write(' '), every);
  trickles.add(t);
  res.on('close', () => {
    clearInterval(t);
    trickles.delete(t);
  });
}

/** A gateway in a child process: a 100 MiB function list and a 50 MiB response, streamed without content-length. */
const BIG_PEER = `
const http = require('node:http');
const chunk = Buffer.alloc(1024 * 1024, 'x');
const stream = (res, mb, start) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write(start);
  let sent = 0;
  const more = () => {
    while (sent < mb) { sent++; if (!res.write(chunk)) return void res.once('drain', more); }
    res.end();
  };
  res.on('error', () => {});
  more();
};
const s = http.createServer((req, res) => {
  if (req.url.startsWith('/system/namespaces')) res.writeHead(404).end();
  else if (req.url.startsWith('/system/functions')) stream(res, 100, '[');
  else stream(res, 50, '');
});
s.listen(0, '127.0.0.1', () => process.stdout.write(s.address().port + '\\n'));
`;

describe('whole-request deadlines', () => {
  it('a /system response trickling one byte at a time fails the rebuild at its deadline; stop does not wait on it', async () => {
    const url = await server((path, res) => {
      if (path.startsWith('/system/namespaces')) res.writeHead(404).end();
      else trickle(res);
    });
    const controller = createController({ gatewayUrl: url, upstreamTimeout: 500, rebuildInterval: 60_000 });
    const err = await controller.refresh().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(controller.status()).toMatchObject({ synced: false, consecutiveFailures: 1 });
    expect(controller.status().lastError).toMatch(/timed out/);
    // A refresh in flight when stop is called ends by its deadline: stop resolves (no hang).
    void controller.refresh().catch(() => undefined);
    await controller.stop();
  });

  it('a function trickling its response fails the invocation at upstream_timeout and frees its slot', async () => {
    const url = await server((path, res) => {
      if (path.startsWith('/system/namespaces')) res.writeHead(404).end();
      else if (path.startsWith('/system/functions'))
        res.end(JSON.stringify([{ name: 'slow', annotations: { topic: 't' } }]));
      else trickle(res);
    });
    const controller = createController({ gatewayUrl: url, upstreamTimeout: 300, rebuildInterval: 60_000 });
    const results: InvokeResult[] = [];
    controller.subscribe((r) => results.push(r));
    const mem = memorySource();
    const connector = createConnector({
      controller,
      source: mem.source,
      retry: { maxRetries: 0 },
      onFailure: 'dead-letter',
    });
    cleanups.push(() => connector.stop());
    await connector.start();
    mem.push({ topic: 't', body: Buffer.from('x') });
    await waitFor(() => mem.acked.length === 1);
    expect(results[0]?.error).toMatchObject({ code: 'ERR_TIMEOUT', canRetry: true });
    expect(connector.inFlight()).toBe(0);
  });
});

describe('bounded memory', () => {
  it('a function response over max_response_bytes fails that invocation (not retried); the connector goes on', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 'x');
    const g = await gateway({
      functions: [
        { name: 'big', annotations: { topic: 'big' }, handler: () => ({ body: big }) },
        { name: 'ok', annotations: { topic: 'ok' } },
      ],
    });
    const controller = createController({ gatewayUrl: g.url, maxResponseBytes: 1024 * 1024 });
    const results: InvokeResult[] = [];
    controller.subscribe((r) => results.push(r));
    const mem = memorySource();
    const connector = createConnector({ controller, source: mem.source, onFailure: 'dead-letter' });
    cleanups.push(() => connector.stop());
    await connector.start();
    mem.push({ topic: 'big', body: Buffer.from('1') }, { topic: 'ok', body: Buffer.from('2') });
    await waitFor(() => mem.acked.length === 2);
    const failed = results.find((r) => r.function === 'big.openfaas-fn');
    expect(failed?.error).toMatchObject({ code: 'ERR_RESPONSE_TOO_LARGE', canRetry: false });
    expect(g.invocations('big.openfaas-fn')).toHaveLength(1); // not retried
    expect(mem.outcomes.map((o) => o.status).sort()).toEqual(['dead-lettered', 'delivered']);
  });

  it('a /system/functions answer over the limit fails the rebuild with its own code', async () => {
    const url = await server((path, res) => {
      if (path.startsWith('/system/namespaces')) res.writeHead(404).end();
      else res.end(`[${'{"name":"f"},'.repeat(100_000)}{"name":"g"}]`);
    });
    const invoker = createInvoker({
      gatewayUrl: url,
      userAgent: 'test',
      connectorName: 'test',
      timeout: 5000,
      maxSystemBytes: 64 * 1024,
    });
    cleanups.push(() => invoker.close());
    await expect(invoker.system('/system/functions')).rejects.toMatchObject({
      code: 'ERR_RESPONSE_TOO_LARGE',
    });
  });

  it('a 9 MB function list of 150,000 annotated functions maps the first max_topic_map_entries (default) and warns once', async () => {
    const n = 150_000;
    const entries = Array.from(
      { length: n },
      (_, i) => `{"name":"f${String(i).padStart(6, '0')}","annotations":{"topic":"topic-${i}"}}`,
    );
    const list = `[${entries.join(',')}]`;
    expect(list.length).toBeGreaterThan(8_000_000);
    const url = await server((path, res) => {
      if (path.startsWith('/system/namespaces')) res.writeHead(404).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end(list);
    });
    const log = memoryLogger();
    const controller = createController({ gatewayUrl: url, logger: log, rebuildInterval: 60_000 });
    cleanups.push(() => controller.stop());
    await controller.refresh();
    expect(controller.functions()).toHaveLength(DEFAULT_MAX_TOPIC_MAP_ENTRIES);
    expect(controller.functions().at(-1)?.name).toBe('f099999');
    expect(controller.match('topic-99999').map((f) => f.name)).toEqual(['f099999']);
    expect(controller.match('topic-100000')).toEqual([]);
    await controller.refresh();
    const warned = log.lines.filter((l) => l.level === 'warn' && /max_topic_map_entries/.test(l.msg ?? ''));
    expect(warned).toHaveLength(1);
  });

  it('a 50 MB function response and a 100 MB function list cost the connector far less than their size', async () => {
    // The peer runs in its own process: only the connector's memory is measured here.
    const child = spawn(process.execPath, ['-e', BIG_PEER], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(async () => {
      child.kill();
    });
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const url = `http://127.0.0.1:${line.toString().trim()}`;
    const controller = createController({ gatewayUrl: url, rebuildInterval: 60_000 });
    /** Peak RSS growth (MiB) while `work` runs, sampled every 5 ms. */
    const growth = async (work: () => Promise<unknown>): Promise<number> => {
      const idle = process.memoryUsage().rss;
      let peak = idle;
      const sample = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss);
      }, 5);
      try {
        await work();
      } finally {
        clearInterval(sample);
      }
      return (Math.max(peak, process.memoryUsage().rss) - idle) / 1024 / 1024;
    };
    // Bounded by the limits (16 MiB list, 10 MiB response), not by what the peer sends: each costs < 50 MB.
    const list = await growth(() =>
      expect(controller.refresh()).rejects.toMatchObject({ code: 'ERR_RESPONSE_TOO_LARGE' }),
    );
    expect(list).toBeLessThan(50);
    let r: InvokeResult | undefined;
    const response = await growth(async () => {
      r = await controller.invokeFunction('big', 'x');
    });
    expect(response).toBeLessThan(50);
    expect(r?.error).toMatchObject({ code: 'ERR_RESPONSE_TOO_LARGE', canRetry: false });
    expect(r?.error?.message).toMatch(/big.*over 10485760 bytes/);
    // The connector keeps working.
    expect(await controller.invokeFunction('big', 'x').then((x) => x.error?.code)).toBe(
      'ERR_RESPONSE_TOO_LARGE',
    );
    await controller.stop();
  });

  it('pending message bytes past max_pending_bytes hold the source back like the in-flight count does', async () => {
    const g = await gateway({ functions: [{ name: 'f', annotations: { topic: 't' } }] });
    g.fault('f.openfaas-fn', { hang: true });
    const controller = createController({ gatewayUrl: g.url });
    const mem = memorySource();
    const connector = createConnector({
      controller,
      source: mem.source,
      maxInFlight: 64,
      maxPendingBytes: 1024 * 1024,
      drainTimeout: 100,
    });
    cleanups.push(() => connector.kill());
    await connector.start();
    const body = Buffer.alloc(256 * 1024);
    mem.push(...Array.from({ length: 20 }, (_, i) => ({ topic: 't', body, id: String(i) })));
    await waitFor(() => connector.pending() === 4);
    // 4 × 256 KiB reach the budget: the source waits for capacity though 60 slots are free (the in-memory source
    // holds the 5th message while it waits; 15 stay at the broker).
    expect(mem.queue.length).toBe(15);
    expect(connector.inFlight()).toBe(4);
    expect(mem.ctx?.hasCapacity()).toBe(false);
    g.release();
    await waitFor(() => mem.acked.length === 20);
  });
});

describe('dead-letter file', () => {
  it('a missing directory fails start-up in one line naming dead_letter_file', async () => {
    const controller = createController({ gatewayUrl: 'http://127.0.0.1:1' });
    const connector = createConnector({
      controller,
      source: memorySource().source,
      deadLetterFile: '/nonexistent-dir-for-test/letters.jsonl',
    });
    const err = await connector.start().then(
      () => undefined,
      (e: unknown) => e as Error & { setting?: string },
    );
    await controller.stop();
    expect(err?.setting).toBe('dead_letter_file');
    expect(err?.message).toMatch(/^invalid dead_letter_file=.*does not exist/);
    expect(err?.message).not.toContain('\n');
  });

  it('one failed write does not break the next ones; a failing sink shows in readiness until a write succeeds', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dlq-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'sub', 'letters.jsonl');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(dir, 'sub'));
    const g = await gateway({
      functions: [{ name: 'f', annotations: { topic: 't' }, handler: () => ({ status: 400 }) }],
    });
    const controller = createController({ gatewayUrl: g.url });
    const mem = memorySource();
    const connector = createConnector({
      controller,
      source: mem.source,
      onFailure: 'dead-letter',
      deadLetterFile: file,
      retry: { maxRetries: 0 },
    });
    cleanups.push(() => connector.stop());
    await connector.start();
    // The directory disappears: the letter cannot be written, the message stays un-acked (redelivered).
    await rm(join(dir, 'sub'), { recursive: true });
    mem.push({ topic: 't', body: Buffer.from('a') });
    await waitFor(() => mem.notAcked.length >= 1);
    expect(connector.readiness().join()).toMatch(/dead-letter sink failing/);
    await mkdir(join(dir, 'sub'));
    await waitFor(() => mem.acked.length === 1);
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(lines.at(-1) as string)).toMatchObject({ topic: 't', function: 'f.openfaas-fn' });
    expect(connector.readiness().join()).not.toMatch(/dead-letter/);
  });
});

describe('gateway URL and function list', () => {
  it('refuses credentials in gateway_url, without repeating the password', () => {
    let err: (Error & { setting?: string }) | undefined;
    try {
      createController({ gatewayUrl: 'http://admin:s3cret-pw@127.0.0.1:8080' });
    } catch (e) {
      err = e as Error & { setting?: string };
    }
    expect(err?.setting).toBe('gatewayUrl');
    expect(err?.message).toMatch(/basic_auth/);
    expect(err?.message).not.toContain('s3cret-pw');
    expect(err?.message).not.toContain('admin');
  });

  it('a function whose topic annotation is not a string is skipped with one warning; the others still route', async () => {
    const g = await gateway({
      functions: [
        { name: 'bad', annotations: { topic: 42 as unknown as string } },
        { name: 'also-bad', annotations: { topic: ['a', 'b'] as unknown as string } },
        { name: 'good', annotations: { topic: 't' } },
      ],
    });
    const log = memoryLogger();
    const controller = createController({ gatewayUrl: g.url, logger: log });
    cleanups.push(() => controller.stop());
    await controller.refresh();
    await controller.refresh();
    expect(controller.functions().map((f) => f.name)).toEqual(['good']);
    expect(controller.match('t').map((f) => f.name)).toEqual(['good']);
    const warnings = log.lines.filter((l) => l.level === 'warn' && /not a string/.test(l.msg ?? ''));
    expect(warnings).toHaveLength(2); // once per function and value, not once per rebuild
  });

  it('functions past max_topic_map_entries (function x topic pairs) are skipped, warned once until the map fits', async () => {
    const topics = (n: number, p: string) => Array.from({ length: n }, (_, i) => `${p}${i}`).join(',');
    const g = await gateway({
      functions: [
        { name: 'a', annotations: { topic: topics(3, 'a') } },
        { name: 'b', annotations: { topic: topics(3, 'b') } },
        { name: 'c', annotations: { topic: topics(3, 'c') } },
      ],
    });
    const log = memoryLogger();
    const controller = createController({ gatewayUrl: g.url, logger: log, maxTopicMapEntries: 7 });
    cleanups.push(() => controller.stop());
    await controller.refresh();
    await controller.refresh();
    expect(controller.functions().map((f) => f.name)).toEqual(['a', 'b']);
    expect(controller.match('c0')).toEqual([]);
    expect(controller.match('b2').map((f) => f.name)).toEqual(['b']);
    const capped = () =>
      log.lines.filter((l) => l.level === 'warn' && /max_topic_map_entries/.test(l.msg ?? ''));
    expect(capped()).toHaveLength(1);
    expect(capped()[0]?.msg).toBe(
      'topic map over max_topic_map_entries (7 function x topic pairs): 1 functions skipped',
    );
    g.removeFunction('c');
    await controller.refresh();
    expect(controller.functions().map((f) => f.name)).toEqual(['a', 'b']);
    g.updateFunction('a', { annotations: { topic: topics(8, 'a') } });
    await controller.refresh();
    expect(controller.functions()).toEqual([]); // the first function alone is over the cap: none mapped
    expect(capped()).toHaveLength(2); // warned again after a rebuild that fitted
    expect(() => createController({ gatewayUrl: g.url, maxTopicMapEntries: 0 })).toThrow(
      'invalid maxTopicMapEntries=0: expected an integer >= 1',
    );
  });
});

describe('a connector runs until it is stopped', () => {
  it('with the gateway down at start, the rebuild timer keeps the process alive', async () => {
    // The controller's own timers, not a count of the process's (another test's timer may end in between).
    const made: NodeJS.Timeout[] = [];
    const cleared = new Set<unknown>();
    const realSet = globalThis.setTimeout;
    const realClear = globalThis.clearTimeout;
    const set = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((
      fn: (...a: unknown[]) => void,
      ms?: number,
      ...args: unknown[]
    ) => {
      const t = realSet(fn, ms, ...args);
      made.push(t);
      return t;
    }) as typeof setTimeout);
    const clear = vi.spyOn(globalThis, 'clearTimeout').mockImplementation((t) => {
      cleared.add(t);
      realClear(t);
    });
    try {
      const controller = createController({ gatewayUrl: 'http://127.0.0.1:1', rebuildInterval: 60_000 });
      await controller.start();
      expect(controller.synced()).toBe(false);
      const holding = made.filter((t) => t.hasRef() && !cleared.has(t));
      expect(holding.length).toBeGreaterThan(0); // a ref'd timer: Node does not exit under it
      await controller.stop();
      expect(holding.filter((t) => !cleared.has(t))).toEqual([]);
    } finally {
      set.mockRestore();
      clear.mockRestore();
    }
  });
});
