import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Acks } from '../src/acks.js';
import { client } from './helpers/clients.js';
import { MOSQUITTO, reportMissingMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { startMqttTap } from './helpers/tap.js';
import { waitFor } from './helpers/wait.js';

// Acks on its own, on a real mqtt.js client against mosquitto, behind a tap that records what the client answered
// (PUBACK, PUBREC, PUBCOMP): which acknowledgements leave, when, and in which order, as deliveries settle.

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A message the receiver took: settle it, acked or not (a delivery that rejects is settled not acked by the
 * source: the kit's `rejectionDecision`). */
interface Taken {
  readonly body: string;
  readonly packet: IPublishPacket;
  settle(ack: boolean): void;
}

/** Let every pending promise callback run; no timer can fire meanwhile (ACK_DELAY is a timer). */
async function microtasks(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

let ids = 0;

/**
 * A private mosquitto, a tap in front of it, and an mqtt.js client with `Acks` installed, subscribed to `a/#`
 * (persistent session). `take(body, n)` says whether the receiver takes the n-th copy of a body (default: yes).
 */
async function harness(o: {
  v5: boolean;
  qos?: 1 | 2;
  batch?: number;
  window?: number;
  take?: (body: string, n: number) => boolean;
}) {
  const b = await startMosquitto();
  cleanups.push(() => b.stop());
  const tap = await startMqttTap(b.url);
  cleanups.push(() => tap.close());
  const c: MqttClient = mqtt.connect(tap.url, {
    clientId: `acks-test-${process.pid}-${++ids}`,
    clean: false,
    protocolVersion: o.v5 ? 5 : 4,
    manualConnect: true,
    reconnectPeriod: 50,
    ...(o.v5 ? { properties: { sessionExpiryInterval: 300 } } : {}),
  });
  cleanups.push(() => c.endAsync(true));
  const taken: Taken[] = [];
  /** Bodies of every message received, taken or not. */
  const seen: string[] = [];
  const copies = new Map<string, number>();
  let reads = 0;
  /** `reads` right after each packet was handled (read on, or the reader stopped), by taken index. */
  const readsAfter: number[] = [];
  const acks = new Acks(
    c,
    o.v5,
    {
      receive(packet, settled) {
        const body = packet.payload.toString();
        seen.push(body);
        const n = (copies.get(body) ?? 0) + 1;
        copies.set(body, n);
        if (o.take && !o.take(body, n)) return false;
        let once = false;
        const settle = (ack: boolean) => {
          if (once) return;
          once = true;
          settled(ack);
        };
        const i = taken.length;
        taken.push({ body, packet, settle });
        queueMicrotask(() => {
          readsAfter[i] = reads;
        });
        return true;
      },
      readNext(next) {
        reads++;
        next();
      },
    },
    o.batch ?? 1,
    o.window ?? Number.POSITIVE_INFINITY,
  );
  c.connect();
  await waitFor(() => c.connected);
  await c.subscribeAsync('a/#', { qos: o.qos ?? 1 });
  const pub = await client(b.url);
  cleanups.push(() => pub.endAsync(true));
  const publish = async (...bodies: string[]) => {
    for (const body of bodies) await pub.publishAsync('a/t', body, { qos: o.qos ?? 1 });
  };
  /** The taken copy of `body` (the last one). */
  const of = (body: string): Taken => {
    const t = taken.findLast((x) => x.body === body);
    if (t === undefined) throw new Error(`${body} not taken`);
    return t;
  };
  const id = (body: string) => of(body).packet.messageId;
  /** Drop the connection and wait until the client is connected again. */
  const reconnect = async () => {
    tap.drop();
    await waitFor(() => !c.connected);
    await waitFor(() => c.connected);
  };
  return { c, tap, acks, taken, seen, of, id, publish, reconnect, readsAfter };
}

if (MOSQUITTO === undefined) {
  reportMissingMosquitto('the Acks tests against mosquitto');
} else {
  describe.each([false, true])('Acks (MQTT 5: %s) against mosquitto', (v5) => {
    it('PUBACKs leave in receive order, only for acked messages: a rejected or not acked one leaves a gap', async () => {
      const h = await harness({ v5 });
      await h.publish('m0', 'm1', 'm2', 'm3', 'm4');
      await waitFor(() => h.taken.length === 5);
      h.of('m2').settle(true);
      h.of('m3').settle(false);
      h.of('m4').settle(true);
      await microtasks();
      expect(h.acks.unacked).toBe(5); // m0 still open: nothing may leave
      h.of('m1').settle(false); // e.g. its delivery rejected
      await microtasks();
      expect(h.acks.unacked).toBe(5);
      h.of('m0').settle(true);
      await waitFor(() => h.tap.pubacks.length === 3);
      expect(h.acks.unacked).toBe(0);
      expect(h.tap.pubacks).toEqual([h.id('m0'), h.id('m2'), h.id('m4')]);
      // Not acked (m1, m3): the broker sends them again on the next connection.
      await h.reconnect();
      await waitFor(() => h.taken.length === 7);
      expect(h.taken.slice(5).map((t) => t.body)).toEqual(['m1', 'm3']);
    });

    it('a message not taken gets no PUBACK and holds back no other; it comes again on the next connection', async () => {
      const h = await harness({ v5, take: (body, n) => body !== 'skip' || n > 1 });
      await h.publish('skip', 'next');
      await waitFor(() => h.taken.length === 1);
      expect(h.seen).toEqual(['skip', 'next']);
      expect(h.acks.unacked).toBe(1);
      h.of('next').settle(true);
      await waitFor(() => h.tap.pubacks.length === 1);
      expect(h.tap.pubacks).toEqual([h.id('next')]);
      await h.reconnect();
      await waitFor(() => h.taken.length === 2);
      h.of('skip').settle(true);
      await waitFor(() => h.tap.pubacks.length === 2);
      expect(h.tap.pubacks[1]).toBe(h.id('skip'));
    });

    it('acks never cross a reconnect: a message open at the drop holds back nothing and is never PUBACKed', async () => {
      const h = await harness({ v5 });
      await h.publish('old');
      await waitFor(() => h.taken.length === 1);
      const old = h.of('old');
      await h.reconnect();
      await waitFor(() => h.taken.length === 2); // the broker sends it again
      expect(h.acks.unacked).toBe(1); // this connection's copy only
      await h.publish('new');
      await waitFor(() => h.taken.length === 3);
      h.of('new').settle(true);
      h.of('old').settle(true); // the copy of this connection
      await waitFor(() => h.tap.pubacks.length === 2);
      expect(h.tap.pubacks).toEqual([h.id('old'), h.id('new')]);
      // The first copy settles late: its packet id names nothing on this connection, no PUBACK for it.
      old.settle(true);
      await h.publish('fence');
      await waitFor(() => h.taken.length === 4);
      h.of('fence').settle(true);
      await waitFor(() => h.tap.pubacks.length >= 3);
      expect(h.tap.pubacks).toEqual([h.id('old'), h.id('new'), h.id('fence')]);
      expect(h.acks.unacked).toBe(0);
    });

    it('holds settled PUBACKs back for a batch while later messages are open, up to ACK_DELAY', async () => {
      const h = await harness({ v5, batch: 2 });
      await h.publish('m0', 'm1', 'm2', 'm3', 'm4');
      await waitFor(() => h.taken.length === 5);
      h.of('m0').settle(true);
      await microtasks();
      expect(h.acks.unacked).toBe(5); // fewer than `batch` ready, later ones open: held
      await waitFor(() => h.acks.unacked === 4); // ...for ACK_DELAY at most
      await waitFor(() => h.tap.pubacks.length === 1);
      h.of('m1').settle(true);
      await microtasks();
      expect(h.acks.unacked).toBe(4); // held again
      h.of('m2').settle(true);
      await microtasks();
      expect(h.acks.unacked).toBe(2); // `batch` ready: they leave at once
      h.of('m3').settle(true);
      h.of('m4').settle(true);
      await microtasks();
      expect(h.acks.unacked).toBe(0); // nothing open behind: at once
      await waitFor(() => h.tap.pubacks.length === 5);
      expect(h.tap.pubacks).toEqual(h.tap.publishes);
    });

    it('a last open message settling alone is PUBACKed at once, whatever the batch', async () => {
      const h = await harness({ v5, batch: 4 });
      await h.publish('m0');
      await waitFor(() => h.taken.length === 1);
      h.of('m0').settle(true);
      await microtasks();
      expect(h.acks.unacked).toBe(0);
      await waitFor(() => h.tap.pubacks.length === 1);
    });
  });

  describe('Acks window (the source receive maximum) against mosquitto', () => {
    it('stops reading at `window` unacked messages and reads on once a PUBACK left; a full window holds a PUBACK for its batch too, up to ACK_DELAY', async () => {
      // MQTT 3.1.1: no receive maximum for the broker to honour, mosquitto sends all three at once.
      const h = await harness({ v5: false, window: 2, batch: 2 });
      await h.publish('m0', 'm1', 'm2');
      await waitFor(() => h.taken.length === 2);
      await microtasks();
      expect(h.readsAfter).toEqual([1, 1]); // read on after m0; the reader stopped at m1
      expect(h.acks.unacked).toBe(2);
      h.of('m1').settle(true);
      await microtasks();
      expect(h.acks.unacked).toBe(2); // m0 is open: nothing leaves, still stopped
      expect(h.taken).toHaveLength(2);
      h.of('m0').settle(true);
      await microtasks();
      expect(h.acks.unacked).toBe(0);
      await waitFor(() => h.taken.length === 3);
      await waitFor(() => h.tap.pubacks.length === 2);
      // Window full again (m2 and m3 open); m2 settles with m3 open and fewer than `batch` ready: held back for
      // its batch like with room in the window (on one ordered topic the window is always full), at most ACK_DELAY;
      // then it leaves alone and lets the next message in.
      await h.publish('m3', 'm4');
      await waitFor(() => h.taken.length === 4);
      h.of('m2').settle(true);
      await microtasks();
      expect(h.acks.unacked).toBe(2);
      expect(h.taken).toHaveLength(4);
      await waitFor(() => h.tap.pubacks.length === 3);
      await waitFor(() => h.taken.length === 5);
      expect(h.tap.pubacks).toEqual([h.id('m0'), h.id('m1'), h.id('m2')]);
    });
  });

  describe.each([false, true])('Acks QoS 2 (MQTT 5: %s) against mosquitto', (v5) => {
    it('answers QoS 2 after delivery: an acked message completes, one not acked comes again after a reconnect', async () => {
      const h = await harness({ v5, qos: 2 });
      await h.publish('q0');
      await waitFor(() => h.taken.length === 1);
      // MQTT 5: no PUBREC before delivery (3.1.1: mqtt.js sent PUBREC on receipt; nothing is complete yet).
      if (v5) expect(h.tap.pubrecs).toEqual([]);
      expect(h.tap.pubcomps).toEqual([]);
      h.of('q0').settle(false);
      await microtasks();
      // A SUBSCRIBE sent now leaves after any answer sent before it: once the tap saw it, none was sent. (Not its
      // SUBACK: on MQTT 5 mqtt.js reads nothing more until it answers the open QoS 2 message.)
      const before = h.tap.upstream.length;
      h.c.subscribe('fence', { qos: 1 });
      await waitFor(() => h.tap.upstream.slice(before).includes(8));
      if (v5) expect(h.tap.pubrecs).toEqual([]);
      expect(h.tap.pubcomps).toEqual([]);
      await h.reconnect();
      await waitFor(() => h.taken.length === 2);
      expect(h.tap.pubcomps).toEqual([]);
      h.of('q0').settle(true);
      await waitFor(() => h.tap.pubcomps.length === 1);
      expect(h.tap.pubcomps).toEqual([h.id('q0')]);
      expect(h.tap.pubacks).toEqual([]);
      // Delivered and completed: a later message follows, and q0 is not sent again.
      await h.publish('q1');
      await waitFor(() => h.taken.length === 3);
      expect(h.taken.map((t) => t.body)).toEqual(['q0', 'q0', 'q1']);
      h.of('q1').settle(true);
      await waitFor(() => h.tap.pubcomps.length === 2);
    });

    it('a QoS 2 message not taken is not answered and comes again after a reconnect', async () => {
      const h = await harness({ v5, qos: 2, take: (_, n) => n > 1 });
      await h.publish('q0');
      await waitFor(() => h.seen.length === 1);
      await microtasks();
      await h.reconnect();
      await waitFor(() => h.taken.length === 1);
      expect(h.tap.pubcomps).toEqual([]);
      h.of('q0').settle(true);
      await waitFor(() => h.tap.pubcomps.length === 1);
    });
  });
}
