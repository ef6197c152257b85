import { noopLogger } from '@connector/core';
import { startGateway } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { startDemo, startTimerConnector } from '../src/index.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('timer-connector', () => {
  it('runs the cron connector from env against a gateway', async () => {
    const g = await startGateway({
      functions: [{ name: 'job', annotations: { topic: 'cron-function', schedule: '* * * * * *' } }],
    });
    cleanups.push(() => g.close());
    const connector = await startTimerConnector({
      env: { gateway_url: g.url, http_port: '0', connector_name: 'timer-test' },
      signals: false,
      logger: noopLogger,
    });
    cleanups.push(() => connector.stop());
    const [call] = await g.waitForInvocations(1, { fn: 'job', timeout: 5000 });
    expect(call?.headers['x-connector']).toBe('timer-test');
    await connector.stop();
    expect(connector.ready()).toBe(false);
  });

  it('runs interval mode from env', async () => {
    const g = await startGateway({ functions: [{ name: 'beat', annotations: { topic: 'heartbeat' } }] });
    cleanups.push(() => g.close());
    const connector = await startTimerConnector({
      env: {
        gateway_url: g.url,
        http_port: '0',
        mode: 'interval',
        interval: '20ms',
        topic: 'heartbeat',
        body: 'ping',
      },
      signals: false,
      logger: noopLogger,
    });
    cleanups.push(() => connector.stop());
    const calls = await g.waitForInvocations(3, { fn: 'beat' });
    expect(calls.map((c) => c.body.toString())).toEqual(['ping', 'ping', 'ping']);
  });

  it('fails with one line naming the bad setting', async () => {
    await expect(
      startTimerConnector({ env: { upstream_timeout: '30' }, signals: false, logger: noopLogger }),
    ).rejects.toThrow('invalid upstream_timeout="30": expected a duration like 30s, 1m30s or 500ms');
    await expect(
      startTimerConnector({ env: { mode: 'interval', topic: 't' }, signals: false, logger: noopLogger }),
    ).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      setting: 'interval',
    });
  });

  it('pnpm start demo: embedded gateway with the hello function, invoked within seconds', async () => {
    const { connector, gateway } = await startDemo({
      env: { http_port: '0' },
      port: 0,
      signals: false,
      logger: noopLogger,
    });
    cleanups.push(() => connector.stop());
    expect(gateway).toBeDefined();
    const [call] = (await gateway?.waitForInvocations(1, { fn: 'hello', timeout: 5000 })) ?? [];
    expect(call?.status).toBe(200);
  });
});
