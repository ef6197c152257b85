import type { Connector } from '@connector/core';
import { cleanups, freePort, startGateway, type TestGateway, waitFor } from '@connector/testing';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { envWithAliases, startNatsConnector } from '../src/index.js';

// Runs against the machine's shared NATS server (127.0.0.1:4222; `.ci/run` starts it), with unique stream names.
const NATS_URL = process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222';

const cleanup = cleanups();
afterEach(() => cleanup.run());

async function gateway(...args: Parameters<typeof startGateway>): Promise<TestGateway> {
  const g = await startGateway(...args);
  cleanup.add(() => g.close());
  return g;
}

async function nats(): Promise<NatsConnection> {
  const nc = await connect({ servers: NATS_URL });
  cleanup.add(() => nc.close());
  return nc;
}

async function app(...args: Parameters<typeof startNatsConnector>): Promise<Connector> {
  const c = await startNatsConnector(...args);
  cleanup.add(() => c.stop());
  return c;
}

describe('nats-connector app', () => {
  it('fails fast with one line naming an invalid setting', async () => {
    await expect(startNatsConnector({ env: {}, signals: false })).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      setting: 'stream',
      message: 'missing stream: expected a JetStream stream name (or mode=core)',
    });
    await expect(
      startNatsConnector({ env: { stream: 'S', ack_wait: 'forever' }, signals: false }),
    ).rejects.toThrow('invalid ack_wait="forever": expected a duration like 30s, 1m30s or 500ms');
    await expect(
      startNatsConnector({ env: { mode: 'core', reply: 'true' }, signals: false }),
    ).rejects.toMatchObject({ code: 'ERR_CONFIG', setting: 'reply_subjects' });
  });

  it('maps asynchronous_invocation (OpenFaaS nats-connector) to async_invocation', () => {
    expect(envWithAliases({ asynchronous_invocation: 'true' })['async_invocation']).toBe('true');
    expect(
      envWithAliases({ asynchronous_invocation: 'true', async_invocation: 'false' })['async_invocation'],
    ).toBe('false');
  });

  it('runs from env on JetStream: NATS wildcard routing, async alias, /readyz, acked after delivery', async () => {
    const id = `app${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const g = await gateway({
      functions: [
        { name: 'temp', annotations: { topic: `${id}.sensors.*.temp` } },
        { name: 'all', annotations: { topic: `${id}.sensors.>` } },
      ],
    });
    const nc = await nats();
    const jsm = await jetstreamManager(nc);
    cleanup.add(() => jsm.streams.delete(id));
    const port = await freePort();
    const c = await app({
      env: {
        gateway_url: g.url,
        nats_url: NATS_URL,
        stream: id,
        consumer: 'app',
        topics: `${id}.sensors.>`,
        asynchronous_invocation: 'true',
        max_inflight: '8',
        http_port: String(port),
        http_host: '127.0.0.1',
        log_level: 'silent',
        rebuild_interval: '1m',
      },
      signals: false,
    });
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { source: { connected: boolean; detail: Record<string, unknown> } };
    expect(body.source.connected).toBe(true);
    expect(body.source.detail).toMatchObject({ mode: 'jetstream', stream: id, consumer: 'app' });
    const js = jetstream(nc);
    await js.publish(`${id}.sensors.kitchen.temp`, '21.5');
    await js.publish(`${id}.sensors.kitchen.humidity`, '40');
    await waitFor(() => g.invocations().length === 3);
    expect(g.invocations().every((r) => r.async)).toBe(true);
    expect(g.invocations('temp.openfaas-fn').map((r) => r.body.toString())).toEqual(['21.5']);
    expect(g.invocations('temp.openfaas-fn')[0]?.headers['x-connector']).toBe('nats-connector');
    const ci = await jsm.consumers.info(id, 'app');
    expect(ci.config.max_ack_pending).toBe(8); // tied to max_inflight
    await waitFor(async () => (await jsm.consumers.info(id, 'app')).num_ack_pending === 0);
    await c.stop();
  });

  it('runs in core mode (mode=core, broker_host) like openfaas/nats-connector', async () => {
    const id = `core${Date.now().toString(36)}`;
    const g = await gateway({ functions: [{ name: 'fn', annotations: { topic: `${id}.*` } }] });
    await app({
      env: {
        gateway_url: g.url,
        broker_host: '127.0.0.1',
        mode: 'core',
        topics: `${id}.*`,
        http_port: '0',
        log_level: 'silent',
      },
      signals: false,
    });
    const nc = await nats();
    nc.publish(`${id}.x`, 'hello');
    await waitFor(() => g.invocations('fn.openfaas-fn').length === 1);
  });
});
