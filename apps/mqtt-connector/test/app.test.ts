import type { Connector } from '@connector/core';
import { startGateway, type TestGateway } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { client } from '../../../packages/source-mqtt/test/helpers/clients.js';
import {
  freePort,
  MOSQUITTO,
  reportMissingMosquitto,
  startMosquitto,
} from '../../../packages/source-mqtt/test/helpers/mosquitto.js';
import { waitFor } from '../../../packages/source-mqtt/test/helpers/wait.js';
import { startMqttConnector } from '../src/index.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function gateway(...args: Parameters<typeof startGateway>): Promise<TestGateway> {
  const g = await startGateway(...args);
  cleanups.push(() => g.close());
  return g;
}

async function app(...args: Parameters<typeof startMqttConnector>): Promise<Connector> {
  const c = await startMqttConnector(...args);
  cleanups.push(() => c.stop());
  return c;
}

describe('mqtt-connector app', () => {
  it('fails fast with one line naming an invalid setting', async () => {
    await expect(startMqttConnector({ env: {}, signals: false })).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      setting: 'broker',
    });
    await expect(
      startMqttConnector({ env: { broker: 'mqtt://127.0.0.1:1', qos: '7' }, signals: false }),
    ).rejects.toThrow('invalid qos="7": expected an integer from 0 to 2');
    await expect(
      startMqttConnector({ env: { broker: 'mqtt://127.0.0.1:1' }, argv: ['-bogus=1'], signals: false }),
    ).rejects.toMatchObject({ code: 'ERR_CONFIG', setting: 'args' });
  });

  if (MOSQUITTO === undefined) reportMissingMosquitto('the app run test');
  else
    it('runs from env and Go flags: MQTT wildcard routing, gateway credentials, /readyz', async () => {
      const b = await startMosquitto();
      cleanups.push(() => b.stop());
      const g = await gateway({
        credentials: { username: 'admin', password: 'gw-secret' },
        functions: [
          { name: 'temp', annotations: { topic: 'sensors/+/temp' } },
          { name: 'all', annotations: { topic: 'sensors/#' } },
        ],
      });
      const port = await freePort();
      const c = await app({
        env: { http_port: String(port), http_host: '127.0.0.1', log_level: 'silent', rebuild_interval: '1m' },
        argv: [
          `-broker=${b.url.replace('mqtt://', 'tcp://')}`,
          `-gateway=${g.url}`,
          '-gw-username=admin',
          '-gw-password=gw-secret',
          '-id=app-test',
          '-qos=1',
        ],
        signals: false,
      });
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(ready.status).toBe(200);
      const body = (await ready.json()) as { source: { detail: { subscriptions: string[] } } };
      expect(body.source.detail.subscriptions).toEqual(['sensors/#']);
      const p = await client(b.url);
      cleanups.push(() => p.endAsync(true));
      await p.publishAsync('sensors/kitchen/temp', '21.5', { qos: 1 });
      await p.publishAsync('sensors/kitchen/humidity', '40', { qos: 1 });
      await waitFor(() => g.invocations().length === 3);
      expect(g.invocations('temp.openfaas-fn').map((r) => r.body.toString())).toEqual(['21.5']);
      expect(
        g
          .invocations('all.openfaas-fn')
          .map((r) => r.body.toString())
          .sort(),
      ).toEqual(['21.5', '40']);
      const inv = g.invocations('temp.openfaas-fn')[0];
      expect(inv?.headers['x-connector']).toBe('mqtt-connector');
      expect(inv?.headers['authorization']).toBeUndefined();
      await c.stop();
      const notReady = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      expect(notReady).toBeUndefined();
    });
});
