import { memoryLogger } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type MqttSourceOptions, mqttSource } from '../src/index.js';
import { type AedesBroker, startAedes } from './helpers/aedes.js';
import { bodies, client, publishMany } from './helpers/clients.js';
import { deferred, delivered, testContext } from './helpers/context.js';
import { MOSQUITTO } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';

// aedes is the embedded demo broker (MQTT 3.1.1 only, no shared subscriptions). These tests always run; without
// a mosquitto binary they are all the broker coverage there is.
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function aedes(opts: { websocket?: boolean } = {}): Promise<AedesBroker> {
  const b = await startAedes(opts);
  cleanups.push(() => b.stop());
  return b;
}

async function pub(url: string) {
  const c = await client(url, { protocolVersion: 4 });
  cleanups.push(() => c.endAsync(true));
  return c;
}

describe(`MQTT 3.1.1 against aedes${MOSQUITTO ? '' : ' (mosquitto missing: the mosquitto suites do not run)'}`, () => {
  it('delivers QoS 1, acks after delivery, and redelivers what was open when the source stopped', async () => {
    const b = await aedes();
    const opts: MqttSourceOptions = {
      broker: b.url,
      topics: ['a/+'],
      clientId: 'aedes-1',
      protocolVersion: 4,
    };
    const hold = deferred<void>();
    let n = 0;
    const ctx = testContext({
      answer: () => (++n <= 5 ? delivered() : hold.promise.then(() => delivered())),
    });
    const s = mqttSource(opts);
    await s.start(ctx);
    const p = await pub(b.url);
    await publishMany(p, 'a/x', 8, 'k');
    await waitFor(() => ctx.acked.length === 5 && ctx.open() === 3);
    ctx.shutdown();
    await s.stop();

    const ctx2 = testContext();
    const s2 = mqttSource(opts);
    await s2.start(ctx2);
    cleanups.push(() => s2.stop());
    await waitFor(() => ctx2.acked.length === 3, { message: () => bodies(ctx2.messages).join() });
    expect(bodies(ctx2.messages).sort()).toEqual(['k-5', 'k-6', 'k-7']);
    expect(ctx.messages[0]?.headers?.['X-MQTT-Topic']).toBe('a/x');
  });

  it('reconnects after a broker restart and keeps delivering', async () => {
    const b = await aedes();
    const ctx = testContext();
    const s = mqttSource({
      broker: b.url,
      topics: ['r'],
      clientId: 'aedes-2',
      protocolVersion: 4,
      reconnectDelay: { min: 20, max: 50 },
    });
    await s.start(ctx);
    cleanups.push(() => s.stop());
    const p = await pub(b.url);
    await publishMany(p, 'r', 5, 'before');
    await waitFor(() => ctx.acked.length === 5);
    await b.restart();
    await waitFor(() => s.health?.().connected === true && p.connected);
    // The new broker knows no subscription until the source has resubscribed: probe until one arrives.
    let probes = 0;
    await waitFor(async () => {
      await p.publishAsync('r', `probe-${++probes}`, { qos: 1 });
      return ctx.acked.some((b) => b.startsWith('probe-'));
    });
    await publishMany(p, 'r', 5, 'after');
    await waitFor(() => new Set(ctx.acked.filter((b) => b.startsWith('after-'))).size === 5);
    // At-least-once: the publisher may resend QoS 1 messages whose PUBACK the restart cut off.
    expect(new Set(ctx.acked.filter((b) => b.startsWith('before-'))).size).toBe(5);
    expect(s.health?.().detail?.['reconnects']).toBeGreaterThanOrEqual(1);
  });

  it('connects over websockets (ws://host:port/path)', async () => {
    const b = await aedes({ websocket: true });
    const ctx = testContext();
    const s = mqttSource({
      broker: `${b.url}/mqtt`,
      topics: ['w/#'],
      clientId: 'aedes-ws',
      protocolVersion: 4,
    });
    await s.start(ctx);
    cleanups.push(() => s.stop());
    const p = await pub(b.url);
    await p.publishAsync('w/1', 'over-ws', { qos: 1 });
    await waitFor(() => ctx.acked.length === 1);
    expect(bodies(ctx.messages)).toEqual(['over-ws']);
  });

  it('without protocol_version: the broker refuses MQTT 5, the source says so once and speaks MQTT 3.1.1', async () => {
    const b = await aedes();
    const logger = memoryLogger();
    const ctx = testContext({ logger });
    const s = mqttSource({ broker: b.url, topics: ['v/#'], clientId: 'aedes-fallback' });
    expect(s.options.protocolVersion).toBe(5);
    await s.start(ctx);
    cleanups.push(() => s.stop());
    const p = await pub(b.url);
    await p.publishAsync('v/1', 'on-3.1.1', { qos: 1 });
    await waitFor(() => ctx.acked.length === 1);
    expect(bodies(ctx.messages)).toEqual(['on-3.1.1']);
    expect(s.options.protocolVersion).toBe(4);
    expect(s.health?.().detail?.['protocolVersion']).toBe(4);
    const warned = logger.lines.filter((l) => l.level === 'warn');
    expect(warned.map((l) => l.msg)).toEqual([
      'the MQTT broker refused MQTT 5: connecting with MQTT 3.1.1 (set protocol_version=3.1.1 to start with it)',
    ]);
  });

  it('protocol_version 5 asked for: a broker that refuses it fails the start with one line, no fallback', async () => {
    const b = await aedes();
    const s = mqttSource({ broker: b.url, topics: ['v/#'], clientId: 'aedes-v5', protocolVersion: 5 });
    const err = await s.start(testContext()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_BROKER', canRetry: false, brokerCode: '1' });
    expect(String((err as Error).message)).toMatch(
      /^cannot connect to mqtt:\/\/127\.0\.0\.1:\d+ .*Unacceptable protocol version$/,
    );
    expect(s.options.protocolVersion).toBe(5);
  });
});
