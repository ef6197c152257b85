import { noopLogger } from '@connector/core';
import { memoryLogger } from '@connector/testing';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { type MqttSource, type MqttSourceOptions, mqttSource } from '../src/index.js';
import { bodies, client, publishMany } from './helpers/clients.js';
import { deferred, delivered, failed, type TestContext, testContext } from './helpers/context.js';
import { MOSQUITTO, type Mosquitto, reportMissingMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { startMqttTap } from './helpers/tap.js';
import { waitFor } from './helpers/wait.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function broker(...args: Parameters<typeof startMosquitto>): Promise<Mosquitto> {
  const b = await startMosquitto(...args);
  cleanups.push(() => b.stop());
  return b;
}

async function pub(url: string, opts: Parameters<typeof client>[1] = {}): Promise<MqttClient> {
  const c = await client(url, opts);
  cleanups.push(() => c.endAsync(true));
  return c;
}

async function started(options: MqttSourceOptions, ctx: TestContext): Promise<MqttSource> {
  const s = mqttSource(options);
  await s.start(ctx);
  cleanups.push(async () => {
    ctx.shutdown();
    await s.stop();
  });
  return s;
}

let ids = 0;
const clientId = () => `src-test-${process.pid}-${++ids}`;

/** Start a source with the same id again and check the broker redelivers exactly `expected` (then a marker). */
async function afterRestart(url: string, options: MqttSourceOptions, topic: string) {
  const ctx = testContext();
  const s = await started(options, ctx);
  const p = await pub(url);
  await p.publishAsync(topic, 'marker', { qos: 1 });
  await waitFor(() => ctx.acked.includes('marker'), { message: () => bodies(ctx.messages).join() });
  await s.stop();
  return bodies(ctx.messages).filter((b) => b !== 'marker');
}

if (MOSQUITTO === undefined) {
  reportMissingMosquitto('the MQTT source tests against mosquitto (aedes.test.ts runs)');
} else {
  describe.each([4, 5] as const)('MQTT protocol version %i against mosquitto', (protocolVersion) => {
    it('delivers QoS 1 messages with topic, body and headers, and acks them (none redelivered)', async () => {
      const b = await broker();
      const opts: MqttSourceOptions = {
        broker: b.url,
        topics: ['qos1/#'],
        clientId: clientId(),
        protocolVersion,
      };
      const ctx = testContext();
      const s = await started(opts, ctx);
      expect(s.subscriptions()).toEqual(['qos1/#']);
      expect(s.health?.().connected).toBe(true);
      const p = await pub(b.url);
      await publishMany(p, 'qos1/a', 25, 'a');
      await publishMany(p, 'qos1/b/c', 25, 'b');
      await waitFor(() => ctx.acked.length === 50);
      expect(ctx.messages).toHaveLength(50);
      const first = ctx.messages[0];
      expect(first?.topic).toBe('qos1/a');
      expect(first?.orderingKey).toBe('qos1/a');
      expect(first?.headers).toMatchObject({
        'X-MQTT-Topic': 'qos1/a',
        'X-MQTT-Qos': '1',
        'X-MQTT-Retain': 'false',
      });
      expect(bodies(ctx.messages.filter((m) => m.topic === 'qos1/a'))).toEqual(
        Array.from({ length: 25 }, (_, i) => `a-${i}`),
      );
      await s.stop();
      expect(s.health?.().connected).toBe(false);
      expect(await afterRestart(b.url, opts, 'qos1/a')).toEqual([]);
    });

    it('processes several messages at once and never acks the ones not settled at shutdown', async () => {
      const b = await broker();
      const opts: MqttSourceOptions = {
        broker: b.url,
        topics: ['hold/+'],
        clientId: clientId(),
        protocolVersion,
      };
      const gate = deferred<void>();
      const ctx = testContext({ answer: () => gate.promise.then(() => delivered()) });
      const s = mqttSource(opts);
      await s.start(ctx);
      const p = await pub(b.url);
      for (let i = 0; i < 10; i++) await p.publishAsync(`hold/${i}`, `h-${i}`, { qos: 1 });
      // ten topics, ten deliveries open at the same time: acks are deferred, not serial
      await waitFor(() => ctx.open() === 10, { message: () => `open=${ctx.open()}` });
      expect(s.pending()).toBe(10);
      ctx.shutdown(); // what connector.kill() does: every open delivery rejects with ShutdownError
      await s.stop();
      const again = await afterRestart(b.url, opts, 'hold/x');
      expect(again.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `h-${i}`).sort());
    });

    it('a failed delivery (ack=false) is redelivered by the broker after a reconnect', async () => {
      const b = await broker();
      let failures = 0;
      const ctx = testContext({
        answer: (m) => {
          if (Buffer.from(m.body).toString() === 'bad' && failures < 2) {
            failures++;
            return failed;
          }
          return delivered();
        },
      });
      const s = await started(
        { broker: b.url, topics: ['redo'], clientId: clientId(), protocolVersion, redeliveryDelay: 20 },
        ctx,
      );
      const p = await pub(b.url);
      await p.publishAsync('redo', 'bad', { qos: 1 });
      await p.publishAsync('redo', 'good', { qos: 1 });
      await waitFor(() => ctx.acked.includes('bad'), { message: () => bodies(ctx.messages).join() });
      expect(failures).toBe(2);
      expect(bodies(ctx.messages).filter((x) => x === 'bad')).toHaveLength(3);
      const redelivered = ctx.messages.filter((m) => Buffer.from(m.body).toString() === 'bad').slice(1);
      expect(redelivered.every((m) => m.headers?.['X-MQTT-Dup'] === 'true')).toBe(true);
      expect(ctx.acked.filter((x) => x === 'good')).toHaveLength(1);
      expect(s.health?.().detail?.['reconnects']).toBe(2);
    });

    it('a delivery rejected with an unexpected error (not ShutdownError) is not acked: the broker redelivers it', async () => {
      const b = await broker();
      let rejections = 0;
      const ctx = testContext({
        answer: (m) => {
          if (Buffer.from(m.body).toString() === 'boom' && rejections < 1) {
            rejections++;
            return Promise.reject(new Error('engine bug'));
          }
          return delivered();
        },
      });
      const opts: MqttSourceOptions = {
        broker: b.url,
        topics: ['oops'],
        clientId: clientId(),
        protocolVersion,
        redeliveryDelay: 20,
      };
      const s = await started(opts, ctx);
      const p = await pub(b.url);
      await p.publishAsync('oops', 'boom', { qos: 1 });
      await waitFor(() => ctx.acked.includes('boom'), { message: () => bodies(ctx.messages).join() });
      const copies = ctx.messages.filter((m) => Buffer.from(m.body).toString() === 'boom');
      expect(copies).toHaveLength(2);
      expect(copies[1]?.headers?.['X-MQTT-Dup']).toBe('true');
      await s.stop();
      expect(await afterRestart(b.url, opts, 'oops')).toEqual([]);
    });

    it('acknowledges in receive order: a message settled early waits for the PUBACK of an earlier one', async () => {
      const b = await broker();
      const gate = deferred<void>();
      const ctx = testContext({
        topics: ['order/+'],
        answer: (m) =>
          Buffer.from(m.body).toString() === 'first' ? gate.promise.then(() => delivered()) : delivered(),
      });
      const s = await started(
        { broker: b.url, clientId: clientId(), protocolVersion, reconnectDelay: { min: 20, max: 50 } },
        ctx,
      );
      const p = await pub(b.url);
      await p.publishAsync('order/a', 'first', { qos: 1 });
      await p.publishAsync('order/b', 'second', { qos: 1 });
      await waitFor(() => ctx.acked.includes('second') && ctx.open() === 1);
      // A SUBSCRIBE sent now reaches the broker after any PUBACK sent before it: once it is confirmed, the broker
      // has seen every ack the source sent for 'second' (none, when acks keep receive order).
      ctx.setTopics(['order/+', 'fence']);
      await waitFor(() => s.subscriptions().includes('fence'));
      await b.restart(); // the connection drops: the broker sends again whatever was not acknowledged
      await waitFor(() => bodies(ctx.messages).filter((x) => x === 'second').length === 2, {
        message: () => bodies(ctx.messages).join(),
      });
      gate.resolve();
      await waitFor(() => ctx.open() === 0 && ctx.acked.includes('first'));
      await s.stop();
      expect(
        await afterRestart(
          b.url,
          { broker: b.url, topics: ['order/+'], clientId: s.options.clientId, protocolVersion },
          'order/z',
        ),
      ).toEqual([]);
    });

    it('a PUBACK held back for later ones still leaves while a later message stays open', async () => {
      const b = await broker();
      const tap = await startMqttTap(b.url);
      cleanups.push(() => tap.close());
      const gate = deferred<void>();
      const ctx = testContext({
        topics: ['held/+'],
        answer: (m) =>
          Buffer.from(m.body).toString() === 'second' ? gate.promise.then(() => delivered()) : delivered(),
      });
      await started({ broker: tap.url, clientId: clientId(), protocolVersion }, ctx);
      const p = await pub(b.url);
      await p.publishAsync('held/a', 'first', { qos: 1 });
      await p.publishAsync('held/b', 'second', { qos: 1 });
      await waitFor(() => ctx.acked.includes('first') && ctx.open() === 1);
      // 'first' settled with 'second' open behind it: its PUBACK is held for a batch, but only for ACK_DELAY.
      await waitFor(() => tap.pubacks.length === 1, { timeout: 2000 });
      expect(tap.pubacks).toEqual(tap.publishes.slice(0, 1));
      gate.resolve();
      await waitFor(() => tap.pubacks.length === 2);
      expect(tap.pubacks).toEqual(tap.publishes);
    });

    it('QoS 0 is delivered once and never acked or redelivered', async () => {
      const b = await broker();
      const opts: MqttSourceOptions = {
        broker: b.url,
        topics: ['q0'],
        clientId: clientId(),
        protocolVersion,
        qos: 0,
      };
      const ctx = testContext();
      const s = await started(opts, ctx);
      const p = await pub(b.url);
      await publishMany(p, 'q0', 5, 'z', 0);
      await waitFor(() => ctx.messages.length === 5);
      expect(
        ctx.messages.every((m) => m.headers?.['X-MQTT-Qos'] === '0' && !m.headers['X-MQTT-Packet-Id']),
      ).toBe(true);
      expect(new Set(ctx.messages.map((m) => m.id)).size).toBe(5); // unique ids, QoS 0 included
      await s.stop();
    });

    it('warns when the broker grants a lower QoS than asked (mosquitto max_qos 0): messages are at most once', async () => {
      const b = await broker({ listener: 'max_qos 0' });
      const logger = memoryLogger();
      const ctx = testContext({ logger });
      await started({ broker: b.url, topics: ['low/+'], clientId: clientId(), protocolVersion, qos: 1 }, ctx);
      const line = logger.lines.find((l) => l.msg?.startsWith('the broker granted a lower QoS'));
      expect(line?.level).toBe('warn');
      expect(line?.msg).toBe(
        'the broker granted a lower QoS than 1: QoS 0 messages are neither acknowledged nor redelivered (at most once)',
      );
      expect(line?.obj).toEqual({ granted: { 'low/+': 0 }, asked: 1 });
      const p = await pub(b.url);
      await p.publishAsync('low/a', 'x', { qos: 0 }); // (a QoS 1 publish is refused on this listener)
      await waitFor(() => ctx.messages.length === 1);
      expect(ctx.messages[0]?.headers?.['X-MQTT-Qos']).toBe('0');
    });

    it('follows the topics of the functions as they change', async () => {
      const b = await broker();
      const ctx = testContext({ topics: ['follow/+/temp', 'follow/b'] });
      const s = await started({ broker: b.url, clientId: clientId(), protocolVersion }, ctx);
      expect([...s.subscriptions()].sort()).toEqual(['follow/+/temp', 'follow/b']);
      ctx.setTopics(['follow/b', 'follow/c/#', 'bad/#/x']);
      // New filters are subscribed before old ones are dropped: wait for the whole change.
      await waitFor(() => [...s.subscriptions()].sort().join() === 'follow/b,follow/c/#');
      const p = await pub(b.url);
      await p.publishAsync('follow/kitchen/temp', 'gone', { qos: 1 });
      await p.publishAsync('follow/c/d/e', 'deep', { qos: 1 });
      await p.publishAsync('follow/b', 'plain', { qos: 1 });
      await waitFor(() => ctx.messages.length === 2 && bodies(ctx.messages).includes('plain'));
      expect(ctx.messages.map((m) => m.topic)).toEqual(['follow/c/d/e', 'follow/b']);
    });

    it('delivers a message once although several subscriptions match it', async () => {
      const b = await broker();
      const ctx = testContext({ topics: ['ov/+/c', 'ov/b/#', 'ov/b/c', 'wide/#', 'wide/+/c'] });
      const s = await started({ broker: b.url, clientId: clientId(), protocolVersion }, ctx);
      // covered filters are not subscribed at all; partial overlaps are
      expect([...s.subscriptions()].sort()).toEqual(['ov/+/c', 'ov/b/#', 'wide/#']);
      const p = await pub(b.url);
      await p.publishAsync('ov/b/c', 'both', { qos: 1 });
      await p.publishAsync('wide/b/c', 'covered', { qos: 1 });
      await p.publishAsync('ov/z/c', 'marker', { qos: 1 });
      await waitFor(() => ctx.acked.includes('marker'));
      expect(bodies(ctx.messages)).toEqual(['both', 'covered', 'marker']);
    });

    it('keeps delivering across a broker restart: no QoS 1 message lost, health follows the connection', async () => {
      const b = await broker({ config: 'max_queued_messages 0' });
      const opts: MqttSourceOptions = {
        broker: b.url,
        topics: ['restart'],
        clientId: clientId(),
        protocolVersion,
        reconnectDelay: { min: 20, max: 100 },
      };
      const ctx = testContext();
      const s = await started(opts, ctx);
      const p = await pub(b.url, {
        clean: false,
        clientId: `${clientId()}-pub`,
        properties: { sessionExpiryInterval: 600 },
      });
      const sent: Promise<unknown>[] = [];
      for (let i = 0; i < 100; i++) sent.push(p.publishAsync('restart', `r-${i}`, { qos: 1 }));
      await waitFor(() => ctx.messages.length >= 20);
      await b.halt();
      await waitFor(() => s.health?.().connected === false);
      for (let i = 100; i < 200; i++) sent.push(p.publishAsync('restart', `r-${i}`, { qos: 1 }));
      await b.start();
      await Promise.all(sent);
      await waitFor(() => new Set(ctx.acked).size === 200, {
        timeout: 20_000,
        message: () => `acked ${new Set(ctx.acked).size}/200`,
      });
      expect(s.health?.().connected).toBe(true);
      expect(s.health?.().detail?.['reconnects']).toBeGreaterThanOrEqual(1);
      expect(new Set(bodies(ctx.messages))).toEqual(new Set(Array.from({ length: 200 }, (_, i) => `r-${i}`)));
    });
  });

  describe('MQTT 5 specifics against mosquitto', () => {
    it('QoS 0 back-pressure: stops reading the socket at maxPending open deliveries', async () => {
      const b = await broker();
      const gate = deferred<void>();
      let maxOpen = 0;
      const ctx: TestContext = testContext({
        answer: () => {
          maxOpen = Math.max(maxOpen, ctx.open());
          return gate.promise.then(() => delivered());
        },
      });
      await started({ broker: b.url, topics: ['bp/+'], clientId: clientId(), qos: 0, maxPending: 2 }, ctx);
      const p = await pub(b.url);
      for (let i = 0; i < 10; i++) await p.publishAsync(`bp/${i}`, `b-${i}`, { qos: 0 });
      await waitFor(() => ctx.open() === 2);
      gate.resolve();
      await waitFor(() => ctx.acked.length === 10);
      expect(maxOpen).toBeLessThanOrEqual(2);
      expect(ctx.messages).toHaveLength(10);
    });

    it('QoS 2: PUBREC only after delivery, so a message open at shutdown comes back', async () => {
      const b = await broker();
      const opts: MqttSourceOptions = { broker: b.url, topics: ['q2'], clientId: clientId(), qos: 2 };
      const gate = deferred<void>();
      const ctx = testContext({ answer: () => gate.promise.then(() => delivered()) });
      const s = mqttSource(opts);
      await s.start(ctx);
      const p = await pub(b.url);
      await p.publishAsync('q2', 'two', { qos: 2 });
      await waitFor(() => ctx.open() === 1);
      ctx.shutdown();
      await s.stop();
      expect(await afterRestart(b.url, opts, 'q2')).toEqual(['two']);
      const ctx2 = testContext();
      const s2 = await started(opts, ctx2);
      await p.publishAsync('q2', 'three', { qos: 2 });
      await waitFor(() => ctx2.acked.includes('three'));
      expect(ctx2.messages[0]?.headers?.['X-MQTT-Qos']).toBe('2');
      await s2.stop();
      expect(await afterRestart(b.url, opts, 'q2')).toEqual([]);
    });

    it('messages queued for a filter of an earlier configuration are delivered, not taken for duplicates', async () => {
      const b = await broker();
      const id = clientId();
      const s1 = mqttSource({ broker: b.url, topics: ['cfg/+/c'], clientId: id });
      await s1.start(testContext());
      await s1.stop();
      const p = await pub(b.url);
      await publishMany(p, 'cfg/x/c', 100, 'queued');
      const ctx = testContext();
      // a small receive window: most queued messages reach us after the new subscription's SUBACK
      const s2 = await started({ broker: b.url, topics: ['cfg/#'], clientId: id, receiveMaximum: 2 }, ctx);
      expect(s2.subscriptions()).toEqual(['cfg/#']);
      await waitFor(() => new Set(ctx.acked).size === 100, {
        message: () => `${new Set(ctx.acked).size}/100`,
      });
      expect(new Set(ctx.acked)).toEqual(new Set(Array.from({ length: 100 }, (_, i) => `queued-${i}`)));
    });

    it('hands properties over raw as headers and, when allowed, publishes the response to the response topic', async () => {
      const b = await broker();
      const ctx = testContext({ answer: (m) => delivered(`pong:${Buffer.from(m.body).toString()}`) });
      await started(
        { broker: b.url, topics: ['rpc/+'], clientId: clientId(), responseTopics: ['replies/#'] },
        ctx,
      );
      const requester = await pub(b.url);
      await requester.subscribeAsync('replies/me', { qos: 1 });
      const reply = new Promise<{ payload: string; props: Record<string, unknown> | undefined }>((resolve) =>
        requester.on('message', (_t, payload, packet) =>
          resolve({ payload: payload.toString(), props: packet.properties as Record<string, unknown> }),
        ),
      );
      await requester.publishAsync('rpc/ping', 'ping', {
        qos: 1,
        properties: {
          responseTopic: 'replies/me',
          correlationData: Buffer.from('corr-1'),
          contentType: 'application/json; charset=ütf-8',
          userProperties: {
            'X-Trace': 'abc',
            Multi: ['1', '2'],
            'bad name': 'x',
            Host: 'evil',
            Utf8: 'grüße ✓',
            'X-MQTT-Qos': '9',
            'x-mqtt-dup': 'true',
          },
        },
      });
      const r = await reply;
      expect(r.payload).toBe('pong:ping');
      expect(Buffer.from(r.props?.['correlationData'] as Buffer).toString()).toBe('corr-1');
      expect(r.props?.['userProperties']).toMatchObject({
        'X-Function': 'fn.openfaas-fn',
        'X-Function-Status': '200',
      });
      expect(r.props?.['contentType']).toBe('text/plain');
      const m = ctx.messages[0];
      // raw: core's header policy (not the source) decides what reaches the function and encodes the rest
      expect(m?.contentType).toBe('application/json; charset=ütf-8');
      expect({ ...m?.headers }).toEqual({
        'X-Trace': 'abc',
        Multi: '1, 2',
        'bad name': 'x',
        Host: 'evil',
        Utf8: 'grüße ✓',
        'X-MQTT-Topic': 'rpc/ping',
        'X-MQTT-Qos': '1',
        'X-MQTT-Packet-Id': expect.stringMatching(/^\d+$/),
        'X-MQTT-Retain': 'false',
        'X-MQTT-Response-Topic': 'replies/me',
        'X-MQTT-Correlation-Data': Buffer.from('corr-1').toString('base64'),
      });
    });

    describe('replies to a response topic (any publisher chooses it)', () => {
      /** Send one request with `responseTopic`, wait until it is acked, stop the source, and return what an
       * observer subscribed to `watch` received before a marker it published itself after that. */
      async function requestAndObserve(responseTopics: string[] | undefined, responseTopic: string) {
        const b = await broker();
        const warnings: string[] = [];
        const logger = {
          ...noopLogger,
          warn: (...args: unknown[]) => void warnings.push(String(args.at(-1))),
        };
        const ctx = testContext({ answer: () => delivered('response-body'), logger });
        const s = await started(
          {
            broker: b.url,
            topics: ['req/+'],
            clientId: clientId(),
            ...(responseTopics === undefined ? {} : { responseTopics }),
          },
          ctx,
        );
        const observer = await pub(b.url);
        await observer.subscribeAsync(['admin/#', 'replies/#'], { qos: 1 });
        const seen: string[] = [];
        observer.on('message', (topic, payload) => seen.push(`${topic}=${payload.toString()}`));
        const requester = await pub(b.url);
        for (const n of [1, 2])
          await requester.publishAsync(`req/${n}`, `request-${n}`, { qos: 1, properties: { responseTopic } });
        await waitFor(() => ctx.acked.length === 2);
        await s.stop(); // everything the source published is at the broker before its DISCONNECT
        await observer.publishAsync('replies/marker', 'end', { qos: 1 });
        await waitFor(() => seen.includes('replies/marker=end'));
        return { seen: seen.filter((x) => x !== 'replies/marker=end'), warnings };
      }

      it('are off by default: nothing is published, and the refusal is logged once per topic', async () => {
        const { seen, warnings } = await requestAndObserve(undefined, 'replies/me');
        expect(seen).toEqual([]);
        expect(warnings.filter((w) => w.includes('not publishing the function response'))).toHaveLength(1);
        expect(warnings.join()).toMatch(/replies are off/);
      });

      it('are published to a response topic that matches responseTopics', async () => {
        const { seen } = await requestAndObserve(['replies/#'], 'replies/me');
        expect(seen).toEqual(['replies/me=response-body', 'replies/me=response-body']);
      });

      it('are refused for admin/commands when only replies/# is allowed', async () => {
        const { seen, warnings } = await requestAndObserve(['replies/#'], 'admin/commands');
        expect(seen).toEqual([]);
        expect(warnings.filter((w) => w.includes('not publishing the function response'))).toHaveLength(1);
        expect(warnings.join()).toMatch(/matches no filter of responseTopics \(replies\/#\)/);
      });
    });

    it('retained messages are flagged, and a persistent session does not replay them on restart', async () => {
      const b = await broker();
      const p = await pub(b.url);
      await p.publishAsync('ret/x', 'kept', { qos: 1, retain: true });
      const opts: MqttSourceOptions = { broker: b.url, topics: ['ret/#'], clientId: clientId() };
      const ctx = testContext();
      const s = await started(opts, ctx);
      await waitFor(() => ctx.acked.includes('kept'));
      expect(ctx.messages[0]?.headers?.['X-MQTT-Retain']).toBe('true');
      await s.stop();
      expect(await afterRestart(b.url, opts, 'ret/y')).toEqual([]);
    });
  });

  describe('scale-out, trimming, auth, TLS and websockets against mosquitto', () => {
    it('two sources in a shared group split the messages with none lost or duplicated', async () => {
      for (const protocolVersion of [4, 5] as const) {
        const b = await broker();
        const a = testContext();
        const c = testContext();
        const base = { broker: b.url, topics: ['jobs/#'], sharedGroup: 'workers', protocolVersion };
        const sa = await started({ ...base, clientId: clientId() }, a);
        await started({ ...base, clientId: clientId() }, c);
        expect(sa.subscriptions()).toEqual(['$share/workers/jobs/#']);
        const p = await pub(b.url);
        await publishMany(p, 'jobs/x', 40, `j${protocolVersion}`);
        await waitFor(() => a.acked.length + c.acked.length === 40);
        expect(a.acked.length).toBeGreaterThan(0);
        expect(c.acked.length).toBeGreaterThan(0);
        expect(new Set([...a.acked, ...c.acked]).size).toBe(40);
      }
    });

    it('trims the channel key (emitter.io style) from the routing topic', async () => {
      const b = await broker();
      const ctx = testContext();
      await started(
        { broker: b.url, topics: ['KEY123/sensors/#'], clientId: clientId(), trimChannelKey: true },
        ctx,
      );
      const p = await pub(b.url);
      await p.publishAsync('KEY123/sensors/t1', 'x', { qos: 1 });
      await waitFor(() => ctx.messages.length === 1);
      expect(ctx.messages[0]?.topic).toBe('sensors/t1');
      expect(ctx.messages[0]?.headers?.['X-MQTT-Topic']).toBe('KEY123/sensors/t1');
    });
  });
}
