import { readFileSync } from 'node:fs';
import { startGateway, type TestGateway } from '@connector/testing';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createConnector, createController, type SourceMessage } from '../src/index.js';
import { memorySource, parseMetrics, waitFor } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function connectorWith(
  functions: NonNullable<NonNullable<Parameters<typeof startGateway>[0]>['functions']>,
) {
  const g: TestGateway = await startGateway({ functions });
  cleanups.push(() => g.close());
  const controller = createController({ gatewayUrl: g.url, topicMatcher: 'mqtt', rebuildInterval: 60_000 });
  const mem = memorySource();
  const connector = createConnector({
    controller,
    source: mem.source,
    http: { port: 0, host: '127.0.0.1' },
    onFailure: 'dead-letter',
    retry: { maxRetries: 0 },
  });
  cleanups.push(() => connector.stop());
  await connector.start();
  const scrape = async () => (await fetch(`${connector.httpUrl}/metrics`)).text();
  return { g, mem, connector, scrape };
}

/** Lines of /metrics that are samples (not `#` comments): one per series (per bucket for a histogram). */
const seriesLines = (text: string) => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
/** Sample lines of the connector's own metrics (process_/nodejs_ values change between scrapes). */
const connectorLines = (text: string) => seriesLines(text).filter((l) => l.startsWith('connector_'));

describe('bounded metrics', () => {
  it('10,000 distinct topics, routed and unrouted, leave the number of series constant', async () => {
    const { mem, scrape } = await connectorWith([
      { name: 'temp', annotations: { topic: 'sensors/+/temp' } },
      { name: 'all', annotations: { topic: 'sensors/#' } },
    ]);
    const batch = (from: number, n: number) => {
      const out: SourceMessage[] = [];
      for (let i = from; i < from + n; i++) {
        // routed to both, routed to one, unrouted: every topic distinct
        const topic =
          i % 3 === 0 ? `sensors/dev-${i}/temp` : i % 3 === 1 ? `sensors/dev-${i}/hum` : `other/dev-${i}`;
        out.push({ topic, body: Buffer.from('1') });
      }
      return out;
    };
    mem.push(...batch(0, 30));
    await waitFor(() => mem.acked.length === 30, { message: '30 acked' });
    const before = await scrape();
    mem.push(...batch(30, 10_000));
    await waitFor(() => mem.acked.length === 10_030, { timeout: 60_000, message: '10,030 acked' });
    const after = await scrape();
    console.log(
      `series after 30 topics: ${seriesLines(before).length} (connector_* ${connectorLines(before).length}),` +
        ` after 10,030: ${seriesLines(after).length} (connector_* ${connectorLines(after).length})`,
    );
    expect(connectorLines(after).length).toBe(connectorLines(before).length);
    // process_*/nodejs_* series vary with the runtime (a GC kind seen for the first time, handle types), not the data.
    expect(seriesLines(after).length).toBeLessThan(300);
    const m = parseMetrics(after);
    expect(m.get('connector_messages_received_total{source="memory"}')).toBe(10_030);
    expect(m.get('connector_messages_matched_total{source="memory",subscription="sensors/+/temp"}')).toBe(
      3344,
    );
    expect(m.get('connector_messages_matched_total{source="memory",subscription="sensors/#"}')).toBe(6687);
    expect(m.get('connector_unrouted_messages_total{source="memory"}')).toBe(3343);
    expect(after).not.toContain('dev-');
  }, 90_000);

  it('names a message asks for and statuses a gateway invents add no series', async () => {
    let status = 0;
    const { mem, scrape } = await connectorWith([
      { name: 'odd', annotations: { topic: 't' }, handler: () => ({ status: 500 + (status++ % 99) }) },
    ]);
    const round = async (statuses: number, ghosts: number, from: number) => {
      const msgs: SourceMessage[] = [];
      for (let i = 0; i < statuses; i++) msgs.push({ topic: 't', body: Buffer.from('x') });
      // names nobody deployed, asked for by the message itself
      for (let i = from; i < from + ghosts; i++)
        msgs.push({ topic: 't', body: Buffer.from('x'), functions: [`ghost-${i}`] });
      const settled = mem.acked.length + msgs.length;
      mem.push(...msgs);
      await waitFor(() => mem.acked.length === settled, { message: `${settled} dead-lettered` });
      return scrape();
    };
    // statuses 500-559 (retry is off: each message one attempt), then 560-598, which HTTP does not define
    const first = await round(60, 40, 0);
    const text = await round(39, 40, 40);
    expect(connectorLines(text).length).toBe(connectorLines(first).length);
    expect(text).not.toContain('ghost-');
    const m = parseMetrics(text);
    expect(m.get('connector_invocations_total{function="odd.openfaas-fn",status="503"}')).toBe(1);
    // 512-598: no code of HTTP's, one class label
    expect(m.get('connector_invocations_total{function="odd.openfaas-fn",status="5xx"}')).toBe(99 - 12);
    expect(m.get('connector_invocations_total{function="_unknown",status="404"}')).toBe(80);
    expect(m.get('connector_dead_letters_total{function="_unknown",reason="ERR_FUNCTION_NOT_FOUND"}')).toBe(
      80,
    );
    expect(m.get('connector_dead_letters_total{function="odd.openfaas-fn",reason="status_5xx"}')).toBe(
      99 - 12,
    );
  }, 30_000);

  it('serves connector_build_info and the standard process_* and nodejs_* metrics', async () => {
    const { scrape } = await connectorWith([{ name: 'f', annotations: { topic: 't' } }]);
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    const m = parseMetrics(await scrape());
    expect(m.get(`connector_build_info{version="${version}",source="memory"}`)).toBe(1);
    // CPU counts from when the collector started: it may still read 0 a few ms later (failed 1 run in 10 under load).
    expect(m.get('process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);
    expect(m.get('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(m.get('nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect([...m.keys()].some((k) => k.startsWith('nodejs_eventloop_lag_seconds'))).toBe(true);
  });

  it('a registry passed in that already has the default metrics is used as it is', async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const controller = createController({ gatewayUrl: 'http://127.0.0.1:1' });
    const connector = createConnector({ controller, source: memorySource().source, registry });
    expect(connector.metrics).toBe(registry);
    expect(await registry.getSingleMetricAsString('connector_build_info')).toContain('source="memory"');
  });
});
