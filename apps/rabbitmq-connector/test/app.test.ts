import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connector } from '@connector/core';
import { cleanups, freePort, startGateway, type TestGateway, waitFor } from '@connector/testing';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import {
  type Admin,
  AMQP_URL,
  admin,
  unique,
} from '../../../packages/source-rabbitmq/test/helpers/rabbit.js';
import { startRabbitmqConnector } from '../src/index.js';

const cleanup = cleanups();
afterEach(() => cleanup.run());

async function gateway(...args: Parameters<typeof startGateway>): Promise<TestGateway> {
  const g = await startGateway(...args);
  cleanup.add(() => g.close());
  return g;
}

async function client(): Promise<Admin> {
  const a = await admin();
  cleanup.add(() => a.close());
  return a;
}

async function app(...args: Parameters<typeof startRabbitmqConnector>): Promise<Connector> {
  const c = await startRabbitmqConnector(...args);
  cleanup.add(() => c.stop());
  return c;
}

describe('rabbitmq-connector app', () => {
  it('fails fast with one line naming an invalid setting, never the password', async () => {
    await expect(startRabbitmqConnector({ env: {}, signals: false })).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      setting: 'rabbitmq_url',
    });
    const bad = startRabbitmqConnector({
      env: { rabbitmq_url: 'amqp://bob:hunter2@127.0.0.1:1', prefetch: 'lots' },
      signals: false,
    });
    await expect(bad).rejects.toThrow('invalid prefetch="lots": expected an integer from 1 to 65535');
    await expect(
      startRabbitmqConnector({ env: { rabbitmq_url: 'http://bob:hunter2@h' }, signals: false }),
    ).rejects.toThrow('invalid rabbitmq_url="http://bob:[redacted]@h/": expected an amqp:// or amqps:// URL');
  });

  it('runs from env: AMQP wildcard routing, gateway credentials, queue named after the connector, /readyz', async () => {
    const g = await gateway({
      credentials: { username: 'admin', password: 'gw-secret' },
      functions: [
        { name: 'created', annotations: { topic: '*.created' } },
        { name: 'orders', annotations: { topic: 'orders.#' } },
      ],
    });
    const a = await client();
    const name = unique('app');
    const queue = a.queue(name);
    const exchange = a.exchange(unique('x'));
    const port = await freePort();
    const secrets = mkdtempSync(join(tmpdir(), 'rmq-app-secrets-'));
    onTestFinished(() => rmSync(secrets, { recursive: true, force: true }));
    writeFileSync(join(secrets, 'basic-auth-user'), 'admin\n');
    writeFileSync(join(secrets, 'basic-auth-password'), 'gw-secret\n');
    const c = await app({
      env: {
        gateway_url: g.url,
        basic_auth: 'true',
        secret_mount_path: secrets,
        http_port: String(port),
        http_host: '127.0.0.1',
        log_level: 'silent',
        rebuild_interval: '1m',
        connector_name: name,
        rabbitmq_url: AMQP_URL,
        exchange,
        max_inflight: '4',
      },
      signals: false,
    });
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as {
      source: { detail: { queues: string[]; bindings: string[]; prefetch: number } };
    };
    expect(body.source.detail.queues).toEqual([queue]);
    expect(body.source.detail.bindings.sort()).toEqual(['*.created', 'orders.#']);
    expect(body.source.detail.prefetch).toBe(4);
    await a.publish(exchange, 'orders.created', 'oc');
    await a.publish(exchange, 'users.created', 'uc');
    await waitFor(() => g.invocations().length === 3);
    expect(g.invocations('orders.openfaas-fn').map((r) => r.body.toString())).toEqual(['oc']);
    expect(
      g
        .invocations('created.openfaas-fn')
        .map((r) => r.body.toString())
        .sort(),
    ).toEqual(['oc', 'uc']);
    const inv = g.invocations('orders.openfaas-fn')[0];
    expect(inv?.headers['x-connector']).toBe(name);
    expect(inv?.headers['authorization']).toBeUndefined();
    await c.stop();
    expect(await a.ready(queue)).toBe(0);
  });
});
