import { startGateway } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type BacklogSample,
  CORE_SETTINGS,
  type ConnectorOptions,
  configFromEnv,
  createConnector,
  createController,
  type Logger,
} from '../src/index.js';
import { memorySource, parseMetrics, waitFor } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A logger that keeps its warnings. */
function warnings() {
  const lines: string[] = [];
  const noop = () => undefined;
  const logger: Logger = {
    trace: noop,
    debug: noop,
    info: noop,
    warn: (_o: unknown, msg?: string) => void lines.push(msg ?? ''),
    error: noop,
    fatal: noop,
    child: () => logger,
  };
  return { logger, lines };
}

/** A connector whose source reports `backlog()` from `broker` (or throws `broker.error`). */
async function setup(opts: Partial<ConnectorOptions> = {}) {
  const g = await startGateway({ functions: [] });
  cleanups.push(() => g.close());
  const broker: { samples: BacklogSample[]; error: Error | undefined; reads: number } = {
    samples: [],
    error: undefined,
    reads: 0,
  };
  const mem = memorySource('fake');
  const source = Object.assign(mem.source, {
    async backlog() {
      broker.reads++;
      if (broker.error) throw broker.error;
      return broker.samples;
    },
  });
  const connector = createConnector({
    controller: createController({ gatewayUrl: g.url, rebuildInterval: 60_000 }),
    source,
    http: { port: 0, host: '127.0.0.1' },
    ...opts,
  });
  cleanups.push(() => connector.stop());
  await connector.start();
  const scrape = async () => parseMetrics(await (await fetch(`${connector.httpUrl}/metrics`)).text());
  return { broker, connector, scrape };
}

describe('backlog sampling', () => {
  it('serves the source backlog as connector_backlog_messages, each sample replacing the last', async () => {
    const { broker, scrape } = await setup({ backlogInterval: 20 });
    broker.samples = [
      { queue: 'orders', partition: 0, value: 5 },
      { queue: 'orders', partition: 1, value: 7 },
      { queue: 'jobs', state: 'ready', value: 3 },
      { queue: 'jobs', state: 'unacked', value: 1 },
    ];
    const m = await waitFor(async () => {
      const m = await scrape();
      return m.get('connector_backlog_messages{source="fake",queue="jobs",state="unacked"}') === 1
        ? m
        : undefined;
    });
    expect([...m].filter(([k]) => k.startsWith('connector_backlog_messages'))).toEqual([
      ['connector_backlog_messages{source="fake",queue="orders",partition="0"}', 5],
      ['connector_backlog_messages{source="fake",queue="orders",partition="1"}', 7],
      ['connector_backlog_messages{source="fake",queue="jobs",state="ready"}', 3],
      ['connector_backlog_messages{source="fake",queue="jobs",state="unacked"}', 1],
    ]);
    // A partition no longer reported (rebalanced, topic gone) leaves the metric.
    broker.samples = [{ queue: 'orders', partition: 0, value: 2 }];
    const after = await waitFor(async () => {
      const m = await scrape();
      return m.get('connector_backlog_messages{source="fake",queue="orders",partition="0"}') === 2
        ? m
        : undefined;
    });
    expect([...after.keys()].filter((k) => k.startsWith('connector_backlog_messages{'))).toHaveLength(1);
  });

  it('a failing sample keeps the last values, warns rate-limited and the connector keeps running', async () => {
    const log = warnings();
    const { broker, connector, scrape } = await setup({ backlogInterval: 5, logger: log.logger });
    broker.samples = [{ queue: 'q', value: 4 }];
    await waitFor(
      async () => (await scrape()).get('connector_backlog_messages{source="fake",queue="q"}') === 4,
    );
    broker.error = new Error('broker unreachable');
    const from = broker.reads;
    await waitFor(() => broker.reads >= from + 20);
    const failed = log.lines.filter((l) => l.includes('backlog sample of source fake failed'));
    // 20+ identical failures: logged at the 1st, 2nd, 4th, 8th, 16th... only.
    expect(failed.length).toBeGreaterThanOrEqual(5);
    expect(failed.length).toBeLessThanOrEqual(Math.ceil(Math.log2(broker.reads - from)) + 1);
    expect(failed[0]).toBe('backlog sample of source fake failed (last values kept): broker unreachable');
    expect((await scrape()).get('connector_backlog_messages{source="fake",queue="q"}')).toBe(4);
    expect(connector.ready()).toBe(true);
    broker.error = undefined;
    broker.samples = [{ queue: 'q', value: 0 }];
    await waitFor(
      async () => (await scrape()).get('connector_backlog_messages{source="fake",queue="q"}') === 0,
    );
  });

  it('backlogInterval 0 never asks the source; a stopped connector stops sampling', async () => {
    const off = await setup({ backlogInterval: 0 });
    expect(off.broker.reads).toBe(0);
    expect([...(await off.scrape()).keys()].some((k) => k.startsWith('connector_backlog'))).toBe(false);

    const on = await setup({ backlogInterval: 5 });
    await waitFor(() => on.broker.reads >= 2);
    await on.connector.stop();
    const reads = on.broker.reads;
    // An absence: 20 intervals pass (a running sampler reads again within one) and nothing was read.
    const t = Date.now();
    await waitFor(() => Date.now() - t >= 100);
    expect(on.broker.reads).toBe(reads);
  });

  it('backlog_interval is read from the env (Go duration), listed with its default, and checked', () => {
    expect(configFromEnv({ backlog_interval: '30s' }).backlogInterval).toBe(30_000);
    expect(configFromEnv({ backlog_interval: '0' }).backlogInterval).toBe(0);
    expect(configFromEnv({}).backlogInterval).toBeUndefined();
    expect(() => configFromEnv({ backlog_interval: 'often' })).toThrow(/backlog_interval/);
    expect(CORE_SETTINGS.find((s) => s.name === 'backlog_interval')?.default).toBe('15s');
    expect(() =>
      createConnector({
        controller: createController({ gatewayUrl: 'http://127.0.0.1:1' }),
        source: memorySource().source,
        backlogInterval: -1,
      }),
    ).toThrow(/backlogInterval/);
  });
});
