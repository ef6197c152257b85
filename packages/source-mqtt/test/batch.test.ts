import { type Connector, type ConnectorOptions, createConnector, createController } from '@connector/core';
import { deferred, startGateway, type TestGateway } from '@connector/testing';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { type MqttSourceOptions, mqttSource } from '../src/index.js';
import { client } from './helpers/clients.js';
import { MOSQUITTO, reportMissingMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { type MqttTap, startMqttTap } from './helpers/tap.js';
import { waitFor } from './helpers/wait.js';

// Batch delivery (connector.dev/batch-size) end to end: mosquitto -> tap (sees PUBLISH / PUBACK packet ids) -> MQTT
// source -> engine's batcher -> one request per batch -> per-item outcome (`batchItemFailures`) -> PUBACK per message.
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** One item of a batch request as the function reads it. */
interface Item {
  id: string;
  body: string;
  topic: string;
  /** The MQTT packet id it came with (`X-MQTT-Packet-Id`). */
  packetId: number;
  dup: boolean;
}

/** One request the function got: its items, the PUBACKs the tap had seen when it arrived, what it answered. */
interface Call {
  items: Item[];
  pubacksBefore: number;
  failed: string[];
}

/** What the function answers for a batch: the bodies it fails (listed in `batchItemFailures`), after `hold`. */
type Decide = (items: Item[], calls: Call[]) => { fail?: string[]; hold?: Promise<void> | undefined };

/**
 * Mosquitto, a tap in front of it, and a gateway with one batched function `fn` on `filter` (`annotations` added)
 * that records every request and answers `batchItemFailures` for the bodies `decide` fails.
 */
async function setup(filter: string, annotations: Record<string, string>, decide: Decide = () => ({})) {
  const b = await startMosquitto();
  cleanups.push(() => b.stop());
  const tap = await startMqttTap(b.url);
  cleanups.push(() => tap.close());
  const calls: Call[] = [];
  const g: TestGateway = await startGateway({
    functions: [
      {
        name: 'fn',
        annotations: { topic: filter, ...annotations },
        handler: async (req) => {
          expect(req.headers['content-type']).toBe('application/vnd.connector.batch+json');
          const doc = JSON.parse(req.body.toString()) as {
            items: { id: string; topic: string; body: string; headers: Record<string, string> }[];
          };
          const items = doc.items.map((i) => {
            const h = Object.fromEntries(Object.entries(i.headers).map(([n, v]) => [n.toLowerCase(), v]));
            const packetId = Number(h['x-mqtt-packet-id']);
            if (!Number.isInteger(packetId))
              throw new Error(`batch item without X-MQTT-Packet-Id: ${i.body}`);
            return { id: i.id, body: i.body, topic: i.topic, packetId, dup: h['x-mqtt-dup'] === 'true' };
          });
          const call: Call = { items, pubacksBefore: tap.pubacks.length, failed: [] };
          calls.push(call);
          const { fail = [], hold } = decide(items, calls);
          await hold;
          call.failed = items.filter((i) => fail.includes(i.body)).map((i) => i.body);
          const failures = items.filter((i) => fail.includes(i.body)).map((i) => ({ itemIdentifier: i.id }));
          return { status: 200, body: JSON.stringify({ batchItemFailures: failures }) };
        },
      },
    ],
  });
  cleanups.push(() => g.close());
  const pub = await client(b.url);
  cleanups.push(() => pub.endAsync(true));
  /** How often the function got `body`. */
  const callsOf = (body: string) => calls.flatMap((c) => c.items).filter((i) => i.body === body).length;
  return { b, tap, g, calls, pub, callsOf };
}

/** A connector (MQTT topic matching) with an MQTT source through `tap`. */
async function connector(
  g: TestGateway,
  tap: MqttTap,
  source: Omit<MqttSourceOptions, 'broker'>,
  opts: Partial<ConnectorOptions> = {},
): Promise<Connector> {
  const c = createConnector({
    controller: createController({ gatewayUrl: g.url, topicMatcher: 'mqtt', rebuildInterval: 60_000 }),
    source: mqttSource({ broker: tap.url, clientId: clientId(), ...source }),
    drainTimeout: 5000,
    ...opts,
    retry: { minDelay: 1, maxDelay: 5, ...opts.retry },
  });
  cleanups.push(() => c.stop());
  await c.start();
  return c;
}

let ids = 0;
const clientId = () => `batch-${process.pid}-${++ids}`;

/** Publish `bodies` to `topic` at QoS 1, in order. */
async function publish(p: MqttClient, topic: string, bodies: string[]) {
  for (const body of bodies) await p.publishAsync(topic, body, { qos: 1 });
}

/** Whether a call's answer succeeded `item`: not failed, and (`ordered`) no earlier item of its topic failed in it. */
function succeeded(c: Call, item: Item, ordered: boolean): boolean {
  if (c.failed.includes(item.body)) return false;
  if (!ordered) return true;
  const before = c.items.slice(0, c.items.indexOf(item));
  return !before.some((j) => j.topic === item.topic && c.failed.includes(j.body)); // held back behind it
}

/**
 * Every PUBACK the tap saw left only after its message settled: a call answered it as succeeded, and that call had
 * arrived before the PUBACK (the `pubacksBefore` of the call is at most the PUBACK's position).
 */
function pubacksAfterSuccess(tap: MqttTap, calls: Call[], ordered: boolean): string[] {
  const wrong: string[] = [];
  for (const [at, id] of tap.pubacks.entries()) {
    const ok = calls.some(
      (c) => c.pubacksBefore <= at && c.items.some((i) => i.packetId === id && succeeded(c, i, ordered)),
    );
    if (!ok) wrong.push(`PUBACK #${at} (packet ${id}) before its message succeeded`);
  }
  return wrong;
}

if (MOSQUITTO === undefined) {
  reportMissingMosquitto('the MQTT batch delivery tests');
} else {
  describe('MQTT with batch delivery (connector.dev/batch-size), mosquitto + test gateway', () => {
    it('partial failure: only the listed items are redelivered; each PUBACK leaves only once its message succeeded', async () => {
      const firstAnswer = deferred<void>();
      cleanups.push(async () => firstAnswer.resolve());
      const failing = ['b-3', 'b-7'];
      const s = await setup(
        'jobs',
        {
          'connector.dev/batch-size': '10',
          'connector.dev/batch-window': '300ms',
          'com.openfaas.retry.attempts': '1', // no retry in the connector: the broker redelivers
        },
        (items, calls) => ({
          hold: calls.length === 1 ? firstAnswer.promise : undefined,
          fail: items.map((i) => i.body).filter((b) => failing.includes(b) && s.callsOf(b) === 1),
        }),
      );
      const c = await connector(
        s.g,
        s.tap,
        // The reconnect for redelivery comes long after the PUBACKs of the succeeded items left (even of a batch the
        // window split off): mosquitto reads one packet per socket per loop, and a reconnect that takes the session
        // over may drop PUBACKs of the old connection it has not read yet (then it sends those messages again).
        { ordering: 'none', redeliveryDelay: 1000 },
        { onFailure: 'redeliver' },
      );
      const sent = Array.from({ length: 10 }, (_, i) => `b-${i}`);
      await Promise.all(sent.map((b) => s.pub.publishAsync('jobs', b, { qos: 1 })));
      // The first batch is with the function: nothing of it has settled, and PUBACKs leave in receive order, so no
      // PUBACK may have left (a later batch, if the window split them, waits behind it).
      await waitFor(() => s.calls.length === 1 && s.tap.publishes.length === 10, {
        message: () => `${s.calls.length} calls, ${s.tap.publishes.length} PUBLISHes`,
      });
      expect(s.calls[0]?.items[0]?.body).toBe('b-0');
      expect(s.tap.pubacks).toEqual([]);
      firstAnswer.resolve();
      await waitFor(() => failing.every((b) => s.callsOf(b) === 2), {
        message: () => `calls ${failing.map((b) => `${b}: ${s.callsOf(b)}`).join(', ')}`,
      });
      await waitFor(() => new Set(s.tap.pubacks).size === 10 && c.pending() === 0, {
        message: () => `PUBACKs ${s.tap.pubacks.join()}`,
      });
      // Nothing lost; the failed ones came back from the broker (DUP set) once; the others were invoked once.
      const trace = () =>
        JSON.stringify({
          calls: s.calls.map((x) => ({
            items: x.items.map((i) => `${i.body}#${i.packetId}${i.dup ? 'd' : ''}`),
            failed: x.failed,
            pubacksBefore: x.pubacksBefore,
          })),
          publishes: s.tap.publishes,
          pubacks: s.tap.pubacks,
        });
      for (const b of sent) expect(s.callsOf(b), `${b}: ${trace()}`).toBe(failing.includes(b) ? 2 : 1);
      const again = s.calls.slice(1).flatMap((call) => call.items);
      expect(again.map((i) => i.body).sort()).toEqual(failing);
      expect(again.every((i) => i.dup)).toBe(true);
      // The succeeded items of the first batch were PUBACKed after its answer, the failed ones not then.
      const idOf = (b: string) => s.calls.flatMap((x) => x.items).find((i) => i.body === b)?.packetId;
      expect(s.tap.pubacks.slice(0, 8).sort()).toEqual(
        sent
          .filter((b) => !failing.includes(b))
          .map(idOf)
          .sort(),
      );
      expect(pubacksAfterSuccess(s.tap, s.calls, false)).toEqual([]);
      expect(s.tap.pubacks).toHaveLength(10); // each message PUBACKed once
    });

    it('ordering=key: a failed item is retried ahead of the later messages of its topic; other topics go on', async () => {
      const s = await setup(
        'ord/+',
        {
          'connector.dev/batch-size': '4',
          'connector.dev/batch-window': '30ms',
          'com.openfaas.retry.attempts': '3',
        },
        () => ({ fail: s.callsOf('a-3') <= 2 ? ['a-3'] : [] }), // a-3 fails twice, then succeeds
      );
      const c = await connector(s.g, s.tap, {}); // ordering=key (the default): one line per topic
      const a = Array.from({ length: 10 }, (_, i) => `a-${i}`);
      const bs = Array.from({ length: 10 }, (_, i) => `b-${i}`);
      for (let i = 0; i < 10; i++) {
        await s.pub.publishAsync('ord/a', a[i] as string, { qos: 1 });
        await s.pub.publishAsync('ord/b', bs[i] as string, { qos: 1 });
      }
      await waitFor(() => s.tap.pubacks.length === 20 && c.pending() === 0, {
        message: () => `${s.tap.pubacks.length} PUBACKs`,
      });
      expect(s.callsOf('a-3')).toBe(3);
      for (const [topic, bodies] of [
        ['ord/a', a],
        ['ord/b', bs],
      ] as const) {
        const seq = s.calls.flatMap((call) => call.items.filter((i) => i.topic === topic).map((i) => i.body));
        // every message of the topic reached the function; in every request in publish order
        expect(new Set(seq)).toEqual(new Set(bodies));
        for (const call of s.calls) {
          const mine = call.items.filter((i) => i.topic === topic).map((i) => bodies.indexOf(i.body));
          expect(mine).toEqual([...mine].sort((x, y) => x - y));
        }
        // the last time each message reached the function is in publish order
        const last = bodies.map((b) => seq.lastIndexOf(b));
        expect(last, topic).toEqual([...last].sort((x, y) => x - y));
      }
      // From a-3's first call to its last, a later message of ord/a reached the function only behind a-3 in the
      // same request (held back there, it goes again behind a-3).
      const with3 = s.calls.flatMap((call, n) => (call.items.some((i) => i.body === 'a-3') ? [n] : []));
      for (const call of s.calls.slice(with3[0], (with3.at(-1) ?? 0) + 1)) {
        const at3 = call.items.findIndex((i) => i.body === 'a-3');
        for (const [n, i] of call.items.entries())
          if (i.topic === 'ord/a' && a.indexOf(i.body) > 3) expect(at3 >= 0 && at3 < n, i.body).toBe(true);
      }
      // ord/b is another line: a-3's failure held back nothing of it, each of its messages reached the function once
      for (const b of bs) expect(s.callsOf(b), b).toBe(1);
      // retried in the connector: no reconnect, no redelivery; PUBACKs in receive order, each after its success
      expect(s.tap.pubacks).toEqual(s.tap.publishes);
      expect(pubacksAfterSuccess(s.tap, s.calls, true)).toEqual([]);
    });

    it('batch-bytes: a message larger than a batch may be goes alone, in its place among its topic', async () => {
      const s = await setup('sized', {
        'connector.dev/batch-size': '10',
        'connector.dev/batch-bytes': '64',
        'connector.dev/batch-window': '50ms',
      });
      const c = await connector(s.g, s.tap, {});
      const big = `big-${'x'.repeat(200)}`;
      const sent = [
        ...Array.from({ length: 4 }, (_, i) => `s-${i}`),
        big,
        ...Array.from({ length: 4 }, (_, i) => `s-${i + 4}`),
      ];
      await publish(s.pub, 'sized', sent);
      await waitFor(() => s.tap.pubacks.length === sent.length && c.pending() === 0, {
        message: () => `${s.tap.pubacks.length} PUBACKs`,
      });
      const requests = s.calls.map((call) => call.items.map((i) => i.body));
      expect(requests.filter((r) => r.includes(big))).toEqual([[big]]);
      for (const r of requests.filter((x) => !x.includes(big)))
        expect(r.reduce((n, b) => n + Buffer.byteLength(b), 0)).toBeLessThanOrEqual(64);
      expect(requests.flat()).toEqual(sent); // each once, in publish order: the big one overtook nothing
      expect(s.tap.pubacks).toEqual(s.tap.publishes);
      expect(pubacksAfterSuccess(s.tap, s.calls, true)).toEqual([]);
    });
  });
}
