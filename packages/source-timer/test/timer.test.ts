import { type Connector, createConnector, createController, type Logger } from '@connector/core';
import { memoryLogger, startGateway, type TestGateway } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type CronSource, cronSource, intervalSource } from '../src/index.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function waitFor(cond: () => boolean, what: string, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function run(
  g: TestGateway,
  source: Parameters<typeof createConnector>[0]['source'],
  logger?: Logger,
  drainTimeout?: number,
) {
  const controller = createController({
    gatewayUrl: g.url,
    rebuildInterval: 100_000,
    ...(logger ? { logger } : {}),
  });
  const connector: Connector = createConnector({
    controller,
    source,
    ...(logger ? { logger } : {}),
    ...(drainTimeout !== undefined ? { drainTimeout } : {}),
  });
  cleanups.push(() => connector.stop());
  await connector.start();
  return { controller, connector };
}

async function gateway(...args: Parameters<typeof startGateway>) {
  const g = await startGateway(...args);
  cleanups.push(() => g.close());
  return g;
}

describe('intervalSource', () => {
  it('emits a message on its topic every interval', async () => {
    const g = await gateway({ functions: [{ name: 'tick', annotations: { topic: 'heartbeat' } }] });
    const source = intervalSource({
      interval: 20,
      topic: 'heartbeat',
      body: 'beat',
      headers: { 'X-Origin': 'timer' },
      immediate: true,
    });
    await run(g, source);
    const calls = await g.waitForInvocations(5, { fn: 'tick' });
    expect(
      calls.every(
        (c) =>
          c.body.toString() === 'beat' &&
          c.headers['x-topic'] === 'heartbeat' &&
          c.headers['x-origin'] === 'timer',
      ),
    ).toBe(true);
    expect(source.ticks).toBeGreaterThanOrEqual(5);
  });

  it('skips ticks while the previous delivery is in flight instead of queueing them', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const g = await gateway({
      functions: [
        {
          name: 'slow',
          annotations: { topic: 't' },
          handler: async () => {
            await held;
            return {};
          },
        },
      ],
    });
    const source = intervalSource({ interval: 5, topic: 't', immediate: true });
    await run(g, source);
    await waitFor(() => source.skipped >= 5, 'skipped ticks');
    expect(g.invocations('slow')).toHaveLength(1);
    release();
    await g.waitForInvocations(2, { fn: 'slow' });
  });
});

describe('cronSource', () => {
  it('invokes each scheduled function on its schedule in its namespace', async () => {
    const g = await gateway({
      functions: [
        { name: 'every-second', annotations: { topic: 'cron-function', schedule: '* * * * * *' } },
        {
          name: 'staging-job',
          namespace: 'staging-fn',
          annotations: { topic: 'cron-function', schedule: '*/1 * * * * *' },
        },
        { name: 'hourly', annotations: { topic: 'cron-function', schedule: '0 * * * *' } },
        { name: 'not-cron', annotations: { topic: 'orders', schedule: '* * * * * *' } },
      ],
    });
    const source = cronSource({});
    await run(g, source);
    expect(
      source
        .scheduled()
        .map((s) => s.function)
        .sort(),
    ).toEqual(['every-second.openfaas-fn', 'hourly.openfaas-fn', 'staging-job.staging-fn']);
    await g.waitForInvocations(2, { fn: 'every-second.openfaas-fn', timeout: 5000 });
    await g.waitForInvocations(2, { fn: 'staging-job.staging-fn', timeout: 5000 });
    const call = g.invocations('every-second.openfaas-fn')[0]!;
    expect(call.headers['x-topic']).toBe('cron-function');
    expect(call.headers['x-connector-schedule']).toBe('* * * * * *');
    expect(g.invocations('not-cron')).toHaveLength(0);
    expect(g.invocations('hourly')).toHaveLength(0);
  });

  it('follows the topic map: added, removed and re-scheduled functions', async () => {
    const g = await gateway({
      functions: [{ name: 'a', annotations: { topic: 'cron-function', schedule: '0 0 1 1 *' } }],
    });
    const source: CronSource = cronSource({});
    const { controller } = await run(g, source);
    expect(source.scheduled()).toMatchObject([{ function: 'a.openfaas-fn', schedule: '0 0 1 1 *' }]);
    g.addFunction({ name: 'b', annotations: { topic: 'cron-function', schedule: '* * * * * *' } });
    await controller.refresh();
    await g.waitForInvocations(1, { fn: 'b', timeout: 5000 });
    g.updateFunction('a', { annotations: { topic: 'cron-function', schedule: '* * * * * *' } });
    g.removeFunction('b');
    await controller.refresh();
    expect(source.scheduled().map((s) => [s.function, s.schedule])).toEqual([
      ['a.openfaas-fn', '* * * * * *'],
    ]);
    const bCalls = g.invocations('b').length;
    await g.waitForInvocations(1, { fn: 'a', timeout: 5000 });
    await g.waitForInvocations(2, { fn: 'a', timeout: 5000 });
    expect(g.invocations('b').length).toBeLessThanOrEqual(bCalls + 1); // at most one run that had already started
  });

  it('logs an invalid schedule once and keeps the other functions running', async () => {
    const g = await gateway({
      functions: [
        { name: 'bad', annotations: { topic: 'cron-function', schedule: 'every tuesday' } },
        { name: 'none', annotations: { topic: 'cron-function' } },
        { name: 'good', annotations: { topic: 'cron-function', schedule: '* * * * * *' } },
      ],
    });
    const logger = memoryLogger();
    const { controller } = await run(g, cronSource({}), logger);
    await controller.refresh();
    await g.waitForInvocations(1, { fn: 'good', timeout: 5000 });
    const warns = logger.lines.filter((l) => l.level === 'warn');
    const invalid = () =>
      logger.lines.filter((l) => l.level === 'warn' && l.msg === 'invalid schedule; function skipped');
    expect(invalid()).toHaveLength(1);
    expect(warns.filter((l) => l.msg?.includes('without a schedule annotation'))).toHaveLength(1);
    expect(g.invocations('bad')).toHaveLength(0);
    // Once per distinct value: another rebuild says nothing new, a different invalid value is reported again.
    g.updateFunction('good', { annotations: { topic: 'cron-function', schedule: '*/1 * * * * *' } });
    await controller.refresh();
    expect(invalid()).toHaveLength(1);
    g.updateFunction('bad', { annotations: { topic: 'cron-function', schedule: '* * * * 8' } });
    await controller.refresh();
    expect(invalid()).toHaveLength(2);
    expect(invalid()[1]?.obj).toMatchObject({ function: 'bad.openfaas-fn', schedule: '* * * * 8' });
    // Fixed: it runs.
    g.updateFunction('bad', { annotations: { topic: 'cron-function', schedule: '* * * * * *' } });
    await controller.refresh();
    await g.waitForInvocations(1, { fn: 'bad', timeout: 5000 });
    expect(invalid()).toHaveLength(2);
  });

  it('does not overlap runs of a slow function', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let concurrent = 0;
    let peak = 0;
    const g = await gateway({
      functions: [
        {
          name: 'slow',
          annotations: { topic: 'cron-function', schedule: '* * * * * *' },
          handler: async () => {
            peak = Math.max(peak, ++concurrent);
            await held;
            concurrent--;
            return {};
          },
        },
      ],
    });
    const logger = memoryLogger();
    await run(g, cronSource({}), logger);
    await g.waitForInvocations(1, { fn: 'slow', timeout: 5000 });
    await waitFor(
      () => logger.lines.some((l) => l.msg === 'previous run still in flight; run skipped'),
      'a skipped run',
      5000,
    );
    expect(g.invocations('slow')).toHaveLength(1);
    release();
    await g.waitForInvocations(2, { fn: 'slow', timeout: 5000 });
    expect(peak).toBe(1);
  });
});

describe('stop', () => {
  for (const kind of ['cron', 'interval'] as const) {
    it(`${kind}: settles a delivery cut off by the shutdown without logging an error`, async () => {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const g = await gateway({
        functions: [
          {
            name: 'hang',
            annotations: { topic: 'cron-function', schedule: '* * * * * *' },
            handler: async () => {
              await held;
              return {};
            },
          },
        ],
      });
      cleanups.push(async () => release());
      const logger = memoryLogger();
      const source =
        kind === 'cron'
          ? cronSource({})
          : intervalSource({ interval: 10, topic: 'cron-function', immediate: true });
      const { connector } = await run(g, source, logger, 50);
      await g.waitForInvocations(1, { fn: 'hang', timeout: 5000 });
      expect(source.health?.().connected).toBe(true);
      expect(connector.inFlight()).toBe(1);
      await connector.stop();
      expect(source.health?.().connected).toBe(false);
      expect(connector.inFlight()).toBe(0);
      expect(g.invocations('hang')).toHaveLength(1);
      if (kind === 'cron') expect((source as CronSource).scheduled()).toEqual([]);
      expect(logger.lines.filter((l) => l.level === 'error')).toEqual([]);
    });
  }
});
