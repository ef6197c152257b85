import { type Connector, type ConnectorOptions, createConnector, createController } from '@connector/core';
import { deferred, startGateway, type TestGateway } from '@connector/testing';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { type MqttSourceOptions, mqttSource } from '../src/index.js';
import { client } from './helpers/clients.js';
import {
  MOSQUITTO,
  type Mosquitto,
  type MosquittoOptions,
  reportMissingMosquitto,
  startMosquitto,
} from './helpers/mosquitto.js';
import { startMqttTap } from './helpers/tap.js';
import { waitFor } from './helpers/wait.js';

// End to end: mosquitto -> MQTT source -> delivery engine -> @connector/testing gateway -> functions.
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function broker(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const b = await startMosquitto(opts);
  cleanups.push(() => b.stop());
  return b;
}

async function gateway(...args: Parameters<typeof startGateway>): Promise<TestGateway> {
  const g = await startGateway(...args);
  cleanups.push(() => g.close());
  return g;
}

async function pub(url: string, opts: Parameters<typeof client>[1] = {}): Promise<MqttClient> {
  const c = await client(url, opts);
  cleanups.push(() => c.endAsync(true));
  return c;
}

/** Start a connector (MQTT topic matching) with an MQTT source; stopped after the test unless killed. */
async function connector(
  g: TestGateway,
  source: MqttSourceOptions,
  opts: Partial<ConnectorOptions> = {},
  connectorName = 'mqtt-e2e',
): Promise<Connector> {
  const controller = createController({
    gatewayUrl: g.url,
    topicMatcher: 'mqtt',
    rebuildInterval: 60_000,
    connectorName,
  });
  const c = createConnector({
    controller,
    source: mqttSource(source),
    drainTimeout: 5000,
    ...opts,
    retry: { minDelay: 1, maxDelay: 5, ...opts.retry },
  });
  cleanups.push(() => c.stop());
  await c.start();
  return c;
}

const text = (b: Uint8Array | string | undefined) => Buffer.from(b ?? '').toString('utf8');
const bodiesOf = (g: TestGateway, fn?: string) => g.invocations(fn).map((i) => text(i.body));
let ids = 0;
const clientId = () => `e2e-${process.pid}-${++ids}`;

if (MOSQUITTO === undefined) {
  reportMissingMosquitto('the end-to-end connector tests');
} else {
  describe('MQTT connector end to end (mosquitto + test gateway)', () => {
    it.each([4, 5] as const)(
      'routes QoS 1 messages by MQTT wildcards (protocol %i)',
      async (protocolVersion) => {
        const g = await gateway({
          functions: [
            { name: 'temp', annotations: { topic: 'sensors/+/temp' } },
            { name: 'sensors', annotations: { topic: 'sensors/#' } },
            { name: 'fire', annotations: { topic: 'alerts/fire' } },
            { name: 'everything', annotations: { topic: '#' } },
            { name: 'internal', annotations: { topic: '$internal/#' } },
          ],
        });
        const b = await broker();
        const c = await connector(g, { broker: b.url, clientId: clientId(), protocolVersion });
        expect(c.ready()).toBe(true);
        const p = await pub(b.url, { protocolVersion });
        await p.publishAsync('sensors/kitchen/temp', 't1', { qos: 1 });
        await p.publishAsync('sensors/kitchen/humidity', 'h1', { qos: 1 });
        await p.publishAsync('alerts/fire', 'f1', { qos: 1 });
        await p.publishAsync('$internal/audit', 'i1', { qos: 1 });
        await p.publishAsync('other', 'o1', { qos: 1 });
        await waitFor(() => g.invocations().length === 9, { message: () => `${g.invocations().length}/9` });
        expect(bodiesOf(g, 'temp.openfaas-fn')).toEqual(['t1']);
        expect(bodiesOf(g, 'sensors.openfaas-fn').sort()).toEqual(['h1', 't1']);
        expect(bodiesOf(g, 'fire.openfaas-fn')).toEqual(['f1']);
        expect(bodiesOf(g, 'internal.openfaas-fn')).toEqual(['i1']);
        expect(bodiesOf(g, 'everything.openfaas-fn').sort()).toEqual(['f1', 'h1', 'o1', 't1']);
        const inv = g.invocations('temp.openfaas-fn')[0];
        expect(inv?.headers['x-topic']).toBe('sensors/kitchen/temp');
        expect(inv?.headers['x-mqtt-topic']).toBe('sensors/kitchen/temp');
        expect(inv?.headers['x-mqtt-qos']).toBe('1');
        await c.stop();
        expect(g.invocations()).toHaveLength(9);
      },
    );

    it('ordering=none: messages of one topic run at once, and the PUBACKs still leave in receive order', async () => {
      const n = 4;
      const gates = Array.from({ length: n }, () => deferred<void>());
      let running = 0;
      const g = await gateway({
        functions: [
          {
            name: 'slow',
            annotations: { topic: 'jobs' },
            handler: async (req) => {
              running++;
              await gates[Number(req.body.toString().slice(4))]?.promise;
              running--;
              return { body: req.body };
            },
          },
        ],
      });
      const b = await broker();
      const tap = await startMqttTap(b.url);
      cleanups.push(() => tap.close());
      const c = await connector(g, { broker: tap.url, clientId: clientId(), ordering: 'none' });
      const p = await pub(b.url);
      for (let i = 0; i < n; i++) await p.publishAsync('jobs', `job-${i}`, { qos: 1 });
      // All n held by the function at once: one topic, yet not one after another (ordering=key runs one).
      await waitFor(() => running === n, { message: () => `${running} running at once` });
      expect(tap.publishes).toHaveLength(n);
      // Settle them last to first; each PUBACK must wait for those of the messages received before it.
      for (let i = n - 1; i >= 0; i--) {
        (gates[i] as ReturnType<typeof deferred<void>>).resolve();
        await waitFor(() => c.pending() === i, { message: () => `${c.pending()} pending` });
        if (i > 0) expect(tap.pubacks).toEqual([]);
      }
      await waitFor(() => tap.pubacks.length === n, { message: () => `PUBACKs ${tap.pubacks.join()}` });
      expect(tap.pubacks).toEqual(tap.publishes);
    });

    it('the source keeps its own window: never more than receiveMaximum messages un-PUBACKed, then all delivered', async () => {
      // MQTT 3.1.1 has no receive maximum: with `max_inflight_messages 0` (the bench's config) mosquitto 2.0 sends
      // every queued QoS 1 PUBLISH at once, whatever is unacknowledged. Only the source's own window bounds it.
      const window = 16;
      const total = 500;
      const held: (() => void)[] = [];
      let arrived = 0;
      let released = 0;
      let holding = true;
      const overruns: string[] = [];
      let source: ReturnType<typeof mqttSource> | undefined;
      const g = await gateway({
        functions: [
          {
            name: 'sink',
            annotations: { topic: 'flood' },
            handler: async (req) => {
              arrived++;
              const unacked = source?.unacked() ?? 0;
              // a call is open until released: open calls and un-PUBACKed messages both stay within the window
              if (arrived - released > window || unacked > window)
                overruns.push(`call ${arrived}: ${arrived - released} open, ${unacked} unacked`);
              if (holding) await new Promise<void>((resolve) => held.push(resolve));
              return { body: req.body };
            },
          },
        ],
      });
      const b = await broker({ config: 'max_inflight_messages 0' });
      const tap = await startMqttTap(b.url);
      cleanups.push(() => tap.close());
      const opts: MqttSourceOptions = {
        broker: tap.url,
        clientId: clientId(),
        protocolVersion: 4,
        ordering: 'none',
        receiveMaximum: window,
      };
      source = mqttSource(opts);
      const controller = createController({
        gatewayUrl: g.url,
        topicMatcher: 'mqtt',
        rebuildInterval: 60_000,
      });
      // capacity and maxPending far above the window: only the window may stop the source
      const c = createConnector({ controller, source, drainTimeout: 5000, maxInFlight: 1000 });
      cleanups.push(() => c.stop());
      await c.start();
      const p = await pub(b.url);
      await Promise.all(
        Array.from({ length: total }, (_, i) => p.publishAsync('flood', `f-${i}`, { qos: 1 })),
      );
      // The broker sent well past the window (the tap sees it), while the functions hold every call.
      await waitFor(() => tap.publishes.length >= 4 * window && arrived >= window, {
        message: () => `broker sent ${tap.publishes.length}, ${arrived} calls`,
      });
      await waitFor(() => source?.unacked() === window, { message: () => `${source?.unacked()} unacked` });
      expect(tap.pubacks).toEqual([]);
      // Release in rounds: each lets at most `window` more in, checked at every arrival.
      while (arrived < total) {
        await waitFor(() => held.length === Math.min(window, total - released), {
          timeout: 10_000,
          message: () => `${held.length} held, ${arrived} arrived, ${released} released`,
        });
        expect(overruns).toEqual([]);
        for (const r of held.splice(0)) {
          released++;
          r();
        }
      }
      holding = false;
      for (const r of held.splice(0)) {
        released++;
        r();
      }
      await waitFor(() => tap.pubacks.length === total, { message: () => `${tap.pubacks.length} PUBACKs` });
      expect(overruns).toEqual([]);
      // every message exactly once (no failure, no reconnect: nothing to redeliver)
      const got = bodiesOf(g);
      expect(got).toHaveLength(total);
      expect(new Set(got).size).toBe(total);
      expect(source.unacked()).toBe(0);
    });

    it('a connector killed mid-stream and restarted with the same client id loses nothing', async () => {
      const g = await gateway({ functions: [{ name: 'count', annotations: { topic: 'stream/+' } }] });
      // more than mosquitto's default max_queued_messages (1000) arrive while the connector is down
      const b = await broker({ config: 'max_queued_messages 0' });
      const opts: MqttSourceOptions = {
        broker: b.url,
        clientId: clientId(),
        reconnectDelay: { min: 20, max: 100 },
      };
      const first = await connector(g, opts);
      const p = await pub(b.url);
      const total = 1500;
      const sent: Promise<unknown>[] = [];
      for (let i = 0; i < 300; i++) sent.push(p.publishAsync(`stream/${i % 5}`, `s-${i}`, { qos: 1 }));
      await waitFor(() => g.invocations().length >= 50);
      await first.kill();
      const atKill = new Set(bodiesOf(g)).size;
      for (let i = 300; i < total; i++) sent.push(p.publishAsync(`stream/${i % 5}`, `s-${i}`, { qos: 1 }));
      await Promise.all(sent);
      await connector(g, opts);
      await waitFor(() => new Set(bodiesOf(g)).size === total, {
        timeout: 25_000,
        message: () => `${new Set(bodiesOf(g)).size}/${total} delivered (${atKill} before the kill)`,
      });
      expect(atKill).toBeLessThan(total);
      expect(g.invocations().length).toBeGreaterThanOrEqual(total);
      // per topic, the first deliveries of the messages keep the publish order
      const firstSeen = [...new Set(bodiesOf(g))].filter((x) => Number(x.slice(2)) % 5 === 0);
      expect(firstSeen).toEqual([...firstSeen].sort((x, y) => Number(x.slice(2)) - Number(y.slice(2))));
    });

    it('a failed invocation is not acked and comes back from the session on reconnect', async () => {
      const g = await gateway({ functions: [{ name: 'flaky', annotations: { topic: 'jobs' } }] });
      const b = await broker();
      await connector(
        g,
        { broker: b.url, clientId: clientId(), redeliveryDelay: 20 },
        { retry: { maxRetries: 0 }, onFailure: 'redeliver' },
      );
      g.fault('flaky.openfaas-fn', { status: 500, times: 1 });
      const p = await pub(b.url);
      await p.publishAsync('jobs', 'job-1', { qos: 1 });
      await waitFor(() => g.invocations('flaky.openfaas-fn').length === 2);
      expect(bodiesOf(g, 'flaky.openfaas-fn')).toEqual(['job-1', 'job-1']);
      expect(g.invocations('flaky.openfaas-fn')[1]?.headers['x-mqtt-dup']).toBe('true');
      await p.publishAsync('jobs', 'job-2', { qos: 1 });
      await waitFor(() => bodiesOf(g, 'flaky.openfaas-fn').includes('job-2'));
      expect(bodiesOf(g, 'flaky.openfaas-fn')).toEqual(['job-1', 'job-1', 'job-2']);
    });

    it('two connectors in a shared group split the messages with none lost', async () => {
      const g = await gateway({ functions: [{ name: 'work', annotations: { topic: 'work/#' } }] });
      const b = await broker();
      await connector(g, { broker: b.url, clientId: clientId(), sharedGroup: 'g1' }, {}, 'member-a');
      await connector(g, { broker: b.url, clientId: clientId(), sharedGroup: 'g1' }, {}, 'member-b');
      const p = await pub(b.url);
      const n = 60;
      for (let i = 0; i < n; i++) await p.publishAsync(`work/${i % 3}`, `w-${i}`, { qos: 1 });
      await waitFor(() => g.invocations().length === n);
      expect(new Set(bodiesOf(g)).size).toBe(n);
      const byMember = (m: string) => g.invocations().filter((i) => i.headers['x-connector'] === m).length;
      expect(byMember('member-a')).toBeGreaterThan(0);
      expect(byMember('member-b')).toBeGreaterThan(0);
      expect(byMember('member-a') + byMember('member-b')).toBe(n);
    });

    it('MQTT 5 request/response: the function response is published to the response topic', async () => {
      const g = await gateway({
        functions: [
          {
            name: 'echo',
            annotations: { topic: 'rpc/echo' },
            handler: (req: { body: Buffer }) => ({
              body: `echo:${req.body.toString()}`,
              headers: { 'content-type': 'text/plain' },
            }),
          },
        ],
      });
      const b = await broker();
      await connector(g, { broker: b.url, clientId: clientId(), responseTopics: ['rpc/replies/#'] });
      const requester = await pub(b.url);
      await requester.subscribeAsync('rpc/replies/1', { qos: 1 });
      const reply = new Promise<{ payload: string; corr: string }>((resolve) =>
        requester.on('message', (_t, payload, packet) =>
          resolve({
            payload: payload.toString(),
            corr: Buffer.from(packet.properties?.correlationData ?? '').toString(),
          }),
        ),
      );
      await requester.publishAsync('rpc/echo', 'hello', {
        qos: 1,
        properties: { responseTopic: 'rpc/replies/1', correlationData: Buffer.from('req-42') },
      });
      expect(await reply).toEqual({ payload: 'echo:hello', corr: 'req-42' });
      expect(g.invocations('echo.openfaas-fn')[0]?.headers['x-mqtt-correlation-data']).toBe(
        Buffer.from('req-42').toString('base64'),
      );
    });

    it('a broker restart during a stream loses no QoS 1 message; readiness follows the connection', async () => {
      const g = await gateway({ functions: [{ name: 'sink', annotations: { topic: 'flow' } }] });
      const b = await broker({ config: 'max_queued_messages 0' });
      const c = await connector(g, {
        broker: b.url,
        clientId: clientId(),
        reconnectDelay: { min: 20, max: 100 },
      });
      const p = await pub(b.url, {
        clean: false,
        clientId: clientId(),
        properties: { sessionExpiryInterval: 600 },
      });
      const sent: Promise<unknown>[] = [];
      for (let i = 0; i < 150; i++) sent.push(p.publishAsync('flow', `f-${i}`, { qos: 1 }));
      await waitFor(() => g.invocations().length >= 30);
      await b.halt();
      await waitFor(() => !c.ready());
      expect(c.readiness().join()).toMatch(/source mqtt not connected/);
      for (let i = 150; i < 300; i++) sent.push(p.publishAsync('flow', `f-${i}`, { qos: 1 }));
      await b.start();
      await Promise.all(sent);
      await waitFor(() => new Set(bodiesOf(g)).size === 300, {
        timeout: 20_000,
        message: () => `${new Set(bodiesOf(g)).size}/300`,
      });
      await waitFor(() => c.ready());
    });
  });
}
