import { createTestContext, waitFor } from '@connector/testing';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { Msg } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANAGED_STREAM, type NatsSourceOptions } from '../src/index.js';
import { jetStreamMessage } from '../src/message.js';
import {
  cleanup,
  connector,
  consumerInfo,
  gateway,
  nats,
  okBodies,
  publish,
  unique,
} from './helpers/connector.js';
import { type NatsServer, startNatsServer } from './helpers/nats.js';

// End to end: private nats-server (JetStream) -> NATS source -> core's engine -> @connector/testing gateway.
let server: NatsServer;
beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server.stop();
});

/** A gateway with one function, `fn`, on topic `p`. */
const fnGateway = (p: string) => gateway({ functions: [{ name: 'fn', annotations: { topic: p } }] });
/** Durable consumer `c` of stream `p` on subject `p` at the test server, with `extra` options. */
const consumerOf = (p: string, extra: Partial<NatsSourceOptions> = {}): NatsSourceOptions => ({
  servers: server.url,
  stream: p,
  consumer: 'c',
  subjects: [p],
  ...extra,
});

describe('JetStream source', () => {
  it("takes the time the stream stored a message as the message's timestamp (for a function's max-age)", async () => {
    const p = unique('ts');
    const nc = await nats(server.url);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: p, subjects: [`${p}.>`] });
    const before = Date.now();
    await jetstream(nc).publish(`${p}.a`, 'x');
    const after = Date.now();
    await jsm.consumers.add(p, { durable_name: 'ts' });
    const m = await (await jetstream(nc).consumers.get(p, 'ts')).next({ expires: 5000 });
    if (m === null) throw new Error('no message fetched from the stream');
    m.ack();
    const at = jetStreamMessage(m).timestamp ?? 0;
    expect(at).toBeGreaterThanOrEqual(before - 1); // the server's clock is this machine's
    expect(at).toBeLessThanOrEqual(after);
  });

  it('routes subjects to functions with NATS wildcards and hands over headers raw plus X-Nats-*', async () => {
    const p = unique('rt');
    const g = await gateway({
      functions: [
        { name: 'one', annotations: { topic: `${p}.orders.*` } },
        { name: 'rest', annotations: { topic: `${p}.orders.>` } },
        { name: 'exact', annotations: { topic: `${p}.audit.eu` } },
      ],
    });
    const nc = await nats(server.url);
    await connector(g, { servers: server.url, stream: p, consumer: 'c', subjects: [`${p}.>`] });
    await publish(nc, `${p}.orders.eu`, 'a', {
      traceparent: '00-abc-def-01',
      'X-Note': 'grüße',
      'X-Nats-Stream': 'spoof',
    });
    await publish(nc, `${p}.orders.eu.paid`, 'b');
    await publish(nc, `${p}.audit.eu`, 'c');
    await publish(nc, `${p}.other`, 'd');
    await waitFor(() => g.invocations().length === 4 && g.pending() === 0);
    expect([...okBodies(g, 'one')]).toEqual(['a']);
    expect([...okBodies(g, 'rest')].sort()).toEqual(['a', 'b']);
    expect([...okBodies(g, 'exact')]).toEqual(['c']);
    const h = g.invocations('one')[0]?.headers ?? {};
    expect(h['x-topic']).toBe(`${p}.orders.eu`);
    expect(h['x-nats-subject']).toBe(`${p}.orders.eu`);
    expect(h['x-nats-stream']).toBe(p);
    expect(h['x-nats-sequence']).toBe('1');
    expect(h['x-nats-delivered']).toBe('1');
    expect(h['traceparent']).toBe('00-abc-def-01');
    expect(decodeURIComponent(h['x-note'] ?? '')).toBe('grüße'); // core's policy percent-encodes non-ASCII
    // the unrouted message is acked too: nothing left pending
    await waitFor(async () => {
      const ci = await consumerInfo(nc, p, 'c');
      return ci.num_ack_pending === 0 && ci.num_pending === 0;
    });
  });

  it('acks only after the delivery settled: a failed delivery is nak-ed with a back-off delay and redelivered', async () => {
    const p = unique('ack');
    const g = await fnGateway(p);
    g.fault('fn', { status: 500, times: 2 });
    const nc = await nats(server.url);
    await connector(
      g,
      consumerOf(p, {
        ackWait: 30_000, // far longer than the test: only the nak brings it back
        nakDelay: { min: 700, max: 5000 },
      }),
    );
    await publish(nc, p, 'retry-me');
    await waitFor(() => okBodies(g).has('retry-me'), { timeout: 20_000 });
    const calls = g.invocations('fn');
    expect(calls.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(calls.map((r) => r.headers['x-nats-delivered'])).toEqual(['1', '2', '3']);
    // nak(delay): each redelivery waits at least nak_delay.min after the failure was answered
    for (let i = 1; i < calls.length; i++) {
      const prev = calls[i - 1] as { at: number };
      expect((calls[i] as { at: number }).at - prev.at).toBeGreaterThanOrEqual(650);
    }
    await waitFor(async () => (await consumerInfo(nc, p, 'c')).num_ack_pending === 0);
    const ci = await consumerInfo(nc, p, 'c');
    expect(ci.ack_floor.stream_seq).toBe(1);
  });

  it('terms a poison message the connector dead-lettered: no redelivery, a MSG_TERMINATED advisory', async () => {
    const p = unique('poison');
    const g = await fnGateway(p);
    g.fault('fn', { status: 500 });
    const nc = await nats(server.url);
    const advisories: Msg[] = [];
    nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.${p}.c`, {
      callback: (_e, m) => void advisories.push(m),
    });
    const acks: string[] = [];
    nc.subscribe(`$JS.ACK.${p}.c.>`, { callback: (_e, m) => void acks.push(m.string()) });
    await nc.flush();
    const { connector: c } = await connector(
      g,
      consumerOf(p, { ackWait: 1000, nakDelay: { min: 10, max: 20 } }),
      { onFailure: 'dead-letter' },
    );
    await publish(nc, p, 'poison');
    await publish(nc, p, 'fine-after');
    await waitFor(() => advisories.length === 2);
    const adv = advisories.map((m) => m.json<{ stream_seq: number; reason?: string }>());
    expect(adv.map((a) => a.stream_seq).sort()).toEqual([1, 2]);
    expect(acks.filter((a) => a.startsWith('+TERM'))).toHaveLength(2);
    // past ack_wait: still two invocations, nothing redelivered, nothing pending
    await waitFor(async () => {
      const ci = await consumerInfo(nc, p, 'c');
      return ci.num_ack_pending === 0 && ci.ack_floor.stream_seq === 2;
    });
    expect(g.invocations('fn')).toHaveLength(2);
    await c.stop();
    expect((await consumerInfo(nc, p, 'c')).num_redelivered).toBe(0);
  });

  it('keeps num_ack_pending at the capacity while the function stalls, with working() progress acks past ack_wait', async () => {
    const p = unique('bp');
    const g = await fnGateway(p);
    g.fault('fn', { hang: true });
    const nc = await nats(server.url);
    const progress: string[] = [];
    nc.subscribe(`$JS.ACK.${p}.c.>`, { callback: (_e, m) => void progress.push(m.string()) });
    await nc.flush();
    const { connector: c } = await connector(
      g,
      consumerOf(p, { maxAckPending: 3, ackWait: 900, fetchExpires: 1000 }),
      { maxInFlight: 3 },
    );
    for (let i = 0; i < 20; i++) await publish(nc, p, `bp-${i}`);
    await waitFor(() => g.pending() === 3);
    // Wait for progress acks well past ack_wait (3 per message per ack_wait): the server must not redeliver.
    await waitFor(() => progress.filter((a) => a === '+WPI').length >= 3 * 3 * 3, { timeout: 20_000 });
    const ci = await consumerInfo(nc, p, 'c');
    expect(ci.config.max_ack_pending).toBe(3);
    expect(ci.num_ack_pending).toBe(3);
    expect(ci.num_redelivered).toBe(0);
    expect(ci.num_pending).toBe(17);
    expect(g.invocations('fn')).toHaveLength(3);
    expect(c.inFlight()).toBe(3);
    g.release();
    await waitFor(() => okBodies(g).size === 20, { timeout: 20_000 });
    await waitFor(async () => (await consumerInfo(nc, p, 'c')).num_ack_pending === 0);
  });

  it('sends working() while a function runs longer than ack_wait: the server does not redeliver it meanwhile', async () => {
    const p = unique('wip');
    const g = await fnGateway(p);
    g.fault('fn', { delay: 2500, times: 1 });
    const nc = await nats(server.url);
    // capacity to spare, so the source keeps pulling: a redelivery would reach it at once
    await connector(g, consumerOf(p, { ackWait: 800, fetchExpires: 1000 }));
    await publish(nc, p, 'slow');
    await waitFor(() => okBodies(g).has('slow'));
    await waitFor(async () => (await consumerInfo(nc, p, 'c')).num_ack_pending === 0);
    expect(g.invocations('fn').map((r) => r.headers['x-nats-delivered'])).toEqual(['1']);
    expect((await consumerInfo(nc, p, 'c')).num_redelivered).toBe(0);
  });

  it('redelivers what was in flight when the connector is killed: every id arrives after a restart', async () => {
    const p = unique('crash');
    const g = await fnGateway(p);
    const nc = await nats(server.url);
    const opts = consumerOf(p, { maxAckPending: 8, ackWait: 2000 });
    g.fault('fn', { hang: true });
    const first = await connector(g, opts, { maxInFlight: 8 });
    const ids = Array.from({ length: 30 }, (_, i) => `id-${i}`);
    for (const id of ids) await publish(nc, p, id);
    await waitFor(() => g.pending() === 8);
    await first.connector.kill();
    g.fault('fn', null);
    g.release(); // the killed connector's requests are answered now, too late: never acked
    const before = g.invocations('fn').length;
    await connector(g, opts, { maxInFlight: 8 });
    await waitFor(() => ids.every((id) => okBodies(g).has(id)), { timeout: 20_000 });
    const after = g.invocations('fn').slice(before);
    // the 8 in flight at the kill came back as redeliveries
    expect(after.filter((r) => Number(r.headers['x-nats-delivered']) >= 2).length).toBeGreaterThanOrEqual(8);
    await waitFor(async () => (await consumerInfo(nc, p, 'c')).num_ack_pending === 0);
  });

  it('stops cleanly: settled deliveries are acked before the connection closes, the rest handed back', async () => {
    const p = unique('stop');
    const g = await fnGateway(p);
    g.fault('fn', { delay: 300 });
    const nc = await nats(server.url);
    const acks = new Map<number, string>(); // stream sequence -> ack payload
    nc.subscribe(`$JS.ACK.${p}.c.>`, {
      callback: (_e, m) => void acks.set(Number(m.subject.split('.')[5]), m.string()),
    });
    await nc.flush();
    const { connector: c, source } = await connector(g, consumerOf(p));
    for (let i = 0; i < 5; i++) await publish(nc, p, `s-${i}`);
    await waitFor(() => g.pending() >= 1);
    await c.stop();
    expect(source.pending()).toBe(0);
    expect(source.health?.().connected).toBe(false);
    await nc.flush();
    const answered = g
      .invocations('fn')
      .filter((r) => r.status === 200)
      .map((r) => Number(r.headers['x-nats-sequence']));
    expect(answered.length).toBeGreaterThanOrEqual(1);
    for (const seq of answered) expect(acks.get(seq)).toBe('+ACK');
    // anything handed to the source but not invoked was given back at once, not left to ack_wait
    for (const [seq, ack] of acks) if (!answered.includes(seq)) expect(ack).toBe('-NAK');
    expect(g.invocations('fn')).toHaveLength(answered.length);
  });

  it('recovers when the consumer is deleted under it: the source fails, restarts and creates it again', async () => {
    const p = unique('gone');
    const g = await fnGateway(p);
    const nc = await nats(server.url);
    await connector(g, consumerOf(p, { fetchExpires: 1000 }), { restartDelay: { min: 50, max: 200 } });
    await publish(nc, p, 'first');
    await waitFor(() => okBodies(g).has('first'));
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.delete(p, 'c');
    await waitFor(async () => (await jsm.consumers.list(p).next()).length === 1);
    await publish(nc, p, 'second');
    await waitFor(() => okBodies(g).has('second'));
  });

  it('follows the functions: creates the stream with their topics and adds new topics to it', async () => {
    const p = unique('follow');
    // an annotation that is no NATS subject is skipped (logged), not a reason to fail the source
    const g = await gateway({ functions: [{ name: 'fn', annotations: { topic: `${p}.a, not a subject` } }] });
    const nc = await nats(server.url);
    await connector(g, { servers: server.url, stream: p, consumer: 'c' }, {}, { rebuildInterval: 200 });
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(p);
    expect(info.config.subjects).toEqual([`${p}.a`]);
    expect(info.config.description).toBe(MANAGED_STREAM);
    g.addFunction({ name: 'fn2', annotations: { topic: `${p}.b.*` } });
    await waitFor(async () => (await jsm.streams.info(p)).config.subjects?.includes(`${p}.b.*`));
    await publish(nc, `${p}.a`, 'to-a');
    await publish(nc, `${p}.b.x`, 'to-b');
    await waitFor(() => okBodies(g, 'fn').has('to-a') && okBodies(g, 'fn2').has('to-b'));
  });

  it('leaves a stream it did not create as it is, and fails start when the stream is missing and may not be created', async () => {
    const p = unique('bound');
    const nc = await nats(server.url);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: p, subjects: [`${p}.x`] });
    cleanup.add(() => jsm.streams.delete(p));
    const g = await gateway({ functions: [{ name: 'fn', annotations: { topic: `${p}.x` } }] });
    await connector(g, { servers: server.url, stream: p, consumer: 'c', subjects: [`${p}.x`, `${p}.y`] });
    expect((await jsm.streams.info(p)).config.subjects).toEqual([`${p}.x`]);
    await publish(nc, `${p}.x`, 'bound');
    await waitFor(() => okBodies(g).has('bound'));

    const { natsSource } = await import('../src/index.js');
    const s = natsSource({
      servers: server.url,
      stream: unique('missing'),
      subjects: ['m.x'],
      createStream: false,
    });
    await expect(s.start(createTestContext())).rejects.toMatchObject({ code: 'ERR_BROKER' });
    expect(s.health?.().connected).toBe(false);
  });
});
