import { startKafkaBroker } from '@connector/kafka-test-broker';
import { deferred, memoryLogger, startGateway, type TestGateway } from '@connector/testing';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { type KafkaClient, kafkajsClient } from '../src/index.js';
import { connect, kafkaSuite, perPartition, waitFor } from './helpers.js';

const { k, cleanup, consume } = kafkaSuite();

async function gateway(topic: string, extra: Parameters<typeof startGateway>[0] = {}): Promise<TestGateway> {
  const g = await startGateway({ functions: [{ name: 'fn', annotations: { topic } }], ...extra });
  cleanup.add(() => g.close());
  return g;
}
const ok = (g: TestGateway) => g.invocations('fn').filter((r) => r.status === 200);
const values = (g: TestGateway) => new Set(ok(g).map((r) => r.body.toString()));
/** How often each body reached the function (answered or not). */
const calls = (g: TestGateway, fn = 'fn') => {
  const n = new Map<string, number>();
  for (const r of g.invocations(fn)) n.set(r.body.toString(), (n.get(r.body.toString()) ?? 0) + 1);
  return n;
};
/** Committed offset per partition of `topic` for `group`. */
const committed = (group: string, topic: string): Record<number, number> =>
  k.broker.committed(group)[topic] ?? {};
/** A gateway whose `fn` holds (until `hold.resolve()`) the first call of every body `holds` accepts. */
async function holdingGateway(topic: string, holds: (body: string) => boolean) {
  const hold = deferred<void>();
  const seen = new Set<string>();
  const g = await gateway(topic, {
    functions: [
      {
        name: 'fn',
        annotations: { topic },
        handler: async (req) => {
          const body = req.body.toString();
          if (holds(body) && !seen.has(body)) {
            seen.add(body);
            await hold.promise;
          }
          return { status: 200, body };
        },
      },
    ],
  });
  cleanup.add(async () => hold.resolve()); // runs before the gateway closes
  return { g, hold };
}

/** A gateway whose `fn` answers each body upper-cased, after records `ask-<i>` keyed `key-<i>` (i < 3) on `partition`. */
async function askUpperCase(topic: string, partition: number) {
  const g = await gateway(topic, {
    functions: [
      {
        name: 'fn',
        annotations: { topic },
        handler: (req) => ({ status: 200, body: req.body.toString().toUpperCase() }),
      },
    ],
  });
  await k.produce(
    topic,
    Array.from({ length: 3 }, (_, i) => ({ partition, key: `key-${i}`, value: `ask-${i}` })),
  );
  return g;
}

describe('Kafka source against the test broker (real kafkajs)', () => {
  it('delivers every record across 4 partitions, in order per partition, and commits after delivery', async () => {
    const topic = 'orders-all';
    const g = await gateway(topic);
    const sent = Array.from({ length: 200 }, (_, i) => ({
      key: `k${i}`,
      value: `v-${i}`,
      headers: { trace: `t${i}` },
    }));
    await k.produce(topic, sent);
    const { source } = await consume(g, {
      topics: [topic],
      group: 'g-all',
    });
    await waitFor(() => values(g).size === 200, '200 deliveries');
    expect(ok(g)).toHaveLength(200);
    const byPartition = new Map<string, number[]>();
    for (const r of ok(g)) {
      const p = r.headers['x-kafka-partition'] as string;
      byPartition.set(p, [...(byPartition.get(p) ?? []), Number(r.headers['x-kafka-offset'])]);
    }
    expect([...byPartition.keys()].sort()).toEqual(['0', '1', '2', '3']);
    for (const offsets of byPartition.values()) expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    const first = ok(g)[0]?.headers ?? {};
    expect(first['x-topic']).toBe(topic);
    expect(first['x-kafka-topic']).toBe(topic);
    expect(first['x-kafka-key']).toMatch(/^k\d+$/);
    expect(first['x-kafka-timestamp']).toMatch(/^\d+$/);
    expect(first['trace']).toMatch(/^t\d+$/);
    await waitFor(() => {
      const c = k.broker.committed('g-all')[topic] ?? {};
      return k.broker.endOffsets(topic).every((end, p) => c[p] === end);
    }, 'offsets committed to the end');
    expect(source.stats().delivered).toBe(200);
  });

  it('a connector killed mid-stream and restarted redelivers exactly what was not committed', async () => {
    const topic = 'orders-kill';
    const sent = perPartition('kill-', 4, 10);
    await k.produce(topic, sent);
    // Offsets 0-4 of every partition succeed, offset 5 hangs: the periodic commit reaches 5, then the crash.
    const { g } = await holdingGateway(topic, (body) => body.endsWith('-5'));
    const first = await connect(g, {
      brokers: k.broker.brokers,
      topics: [topic],
      group: 'g-kill',
      clientId: 'victim',
      commitInterval: 50,
    });
    await waitFor(() => g.pending() === 4, 'offset 5 of each partition held');
    await waitFor(
      () => [0, 1, 2, 3].every((p) => committed('g-kill', topic)[p] === 5),
      'the settled records committed while offset 5 is in flight',
    );
    k.broker.killClient('victim'); // no LeaveGroup, no further commit: a crash
    await first.connector.kill();
    k.broker.reviveClient('victim');
    expect([0, 1, 2, 3].map((p) => committed('g-kill', topic)[p])).toEqual([5, 5, 5, 5]);
    const second = await consume(g, {
      topics: [topic],
      group: 'g-kill',
      clientId: 'survivor',
    });
    await waitFor(
      () => [0, 1, 2, 3].every((p) => committed('g-kill', topic)[p] === 10),
      'every partition committed to the end after the restart',
    );
    // Nothing lost; exactly the uncommitted record in flight at the crash came twice, nothing else did.
    const n = calls(g);
    expect(n.size).toBe(40);
    for (const m of sent)
      expect([m.value, n.get(m.value)]).toEqual([m.value, m.value.endsWith('-5') ? 2 : 1]);
    expect(second.source.stats().delivered).toBe(20);
  });

  it('a graceful stop commits what settled, nothing past the record in flight, and leaves the group', async () => {
    const topic = 'orders-stop';
    const sent = Array.from({ length: 10 }, (_, i) => ({ partition: 0, value: `stop-${i}` }));
    await k.produce(topic, sent);
    const { g, hold } = await holdingGateway(topic, (body) => body === 'stop-5');
    const source = { brokers: k.broker.brokers, topics: [topic], group: 'g-stop', commitInterval: 600_000 };
    const first = await connect(g, source, { drainTimeout: 200 });
    await waitFor(() => g.pending() === 1, 'stop-5 held');
    expect(committed('g-stop', topic)).toEqual({}); // one batch, long commit interval: nothing committed yet
    await first.connector.stop(); // drain times out on stop-5: it is not acked
    expect(committed('g-stop', topic)).toEqual({ 0: 5 });
    expect(k.broker.members('g-stop')).toHaveLength(0);
    hold.resolve();
    const second = await connect(g, source);
    cleanup.add(() => second.connector.stop());
    await waitFor(() => committed('g-stop', topic)[0] === 10, 'the rest committed after the restart');
    const n = calls(g);
    expect(sent.map((m) => n.get(m.value))).toEqual([1, 1, 1, 1, 1, 2, 1, 1, 1, 1]);
  });

  it('a record that fails in redeliver mode is consumed again from it: nothing committed past it, order kept', async () => {
    const topic = 'orders-redeliver';
    let failed = false;
    const g = await gateway(topic, {
      functions: [
        {
          name: 'fn',
          annotations: { topic },
          handler: (req) => {
            if (req.body.toString() !== 'r-2' || failed) return { status: 200 };
            failed = true;
            return { status: 500, body: 'once' };
          },
        },
      ],
    });
    await k.produce(
      topic,
      Array.from({ length: 6 }, (_, i) => ({ partition: 1, value: `r-${i}` })),
    );
    const { source } = await consume(
      g,
      { topics: [topic], group: 'g-redeliver' },
      { retry: { maxRetries: 0 } },
    );
    await waitFor(() => committed('g-redeliver', topic)[1] === 6, 'all six committed');
    expect(g.invocations('fn').map((r) => `${r.body.toString()}:${r.status}`)).toEqual([
      'r-0:200',
      'r-1:200',
      'r-2:500',
      'r-2:200',
      'r-3:200',
      'r-4:200',
      'r-5:200',
    ]);
    expect(source.stats().redelivered).toBe(1);
  });

  it('two connectors in one group split the partitions and together deliver every record', async () => {
    const topic = 'orders-split';
    k.broker.createTopic(topic, 4);
    const g = await gateway(topic);
    const a = await connect(g, {
      brokers: k.broker.brokers,
      topics: [topic],
      group: 'g-split',
      clientId: 'a',
    });
    const b = await connect(g, {
      brokers: k.broker.brokers,
      topics: [topic],
      group: 'g-split',
      clientId: 'b',
    });
    cleanup.add(() => a.connector.stop());
    cleanup.add(() => b.connector.stop());
    await waitFor(
      () => k.broker.group('g-split')?.state === 'Stable' && k.broker.members('g-split').length === 2,
      'a stable group of 2',
    );
    const sent = Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: `s-${i}` }));
    await k.produce(topic, sent);
    await waitFor(() => values(g).size === 100, '100 deliveries');
    // A source counts a record once its outcome is back, after the gateway recorded the call: wait for that too.
    await waitFor(
      () => a.source.stats().delivered + b.source.stats().delivered >= 100,
      'both sources counted every record',
    );
    expect(a.source.stats().delivered).toBeGreaterThan(0);
    expect(b.source.stats().delivered).toBeGreaterThan(0);
  });

  it('a rebalance while records are in flight: the revoked ones are abandoned uncommitted, none is lost', async () => {
    const topic = 'orders-rebalance';
    const sent = perPartition('rb-', 4, 2);
    await k.produce(topic, sent);
    // The first call of offset 0 of every partition hangs (until the end); its redelivery succeeds.
    const { g, hold } = await holdingGateway(topic, (body) => body.endsWith('-0'));
    const options = { brokers: k.broker.brokers, topics: [topic], group: 'g-rebalance', revokeTimeout: 300 };
    const logA = memoryLogger();
    const a = await connect(g, { ...options, clientId: 'a' }, { logger: logA });
    cleanup.add(() => a.connector.stop());
    await waitFor(() => g.pending() === 4, 'offset 0 of each partition held by a');
    // b's join needs a to rejoin: a gives its held records revokeTimeout, then abandons them.
    const b = await connect(g, { ...options, clientId: 'b' });
    cleanup.add(() => b.connector.stop());
    await waitFor(
      () => [0, 1, 2, 3].every((p) => committed('g-rebalance', topic)[p] === 2),
      'every partition committed to the end',
    );
    expect(k.broker.members('g-rebalance')).toHaveLength(2);
    expect(g.pending()).toBe(4); // the abandoned first calls still hang: nothing waited for them
    expect(a.source.stats().abandoned).toBe(4);
    const handedOver = logA.lines.filter((l) =>
      l.msg?.startsWith('partition handed over with a record in flight'),
    );
    expect(handedOver).toHaveLength(4);
    for (const l of handedOver) expect(l).toMatchObject({ level: 'info', obj: { topic, offset: '0' } });
    expect(handedOver.map((l) => (l.obj as { partition: number }).partition).sort()).toEqual([0, 1, 2, 3]);
    expect(b.source.stats().delivered).toBeGreaterThan(0);
    const n = calls(g);
    for (const m of sent)
      expect([m.value, n.get(m.value)]).toEqual([m.value, m.value.endsWith('-0') ? 2 : 1]);
    hold.resolve(); // the abandoned calls settle now; their results commit nothing
    await waitFor(() => g.pending() === 0, 'the abandoned calls answered');
    expect(committed('g-rebalance', topic)).toEqual({ 0: 2, 1: 2, 2: 2, 3: 2 });
  });

  it('a failing function with a dead-letter topic: the record lands there and its offset is committed', async () => {
    const topic = 'orders-dlq';
    const g = await gateway(topic, {
      functions: [{ name: 'fn', annotations: { topic }, handler: () => ({ status: 500, body: 'boom' }) }],
    });
    await k.produce(topic, [{ key: 'bad', value: 'poison' }]);
    await consume(
      g,
      { topics: [topic], group: 'g-dlq', deadLetterTopic: 'orders-dead' },
      { onFailure: 'dead-letter', retry: { maxRetries: 1 } },
    );
    await waitFor(() => k.broker.produced('orders-dead').length === 1, 'the dead letter');
    const dead = k.broker.produced('orders-dead')[0];
    expect(dead?.value?.toString()).toBe('poison');
    expect(dead?.key?.toString()).toBe('bad');
    const header = (name: string) => dead?.headers.find((h) => h.key === name)?.value?.toString();
    expect(header('X-Dead-Letter-Function')).toBe('fn.openfaas-fn');
    expect(header('X-Dead-Letter-Status')).toBe('500');
    expect(header('X-Kafka-Offset')).toBe('0');
    expect(header('X-Dead-Letter-Source')).toBe('kafka');
    expect(header('X-Dead-Letter-Reason')).toMatch(/500/);
    await waitFor(
      () => Object.values(k.broker.committed('g-dlq')[topic] ?? {}).reduce((a, b) => a + b, 0) === 1,
      'offset committed',
    );
    expect(g.invocations('fn')).toHaveLength(1); // a 500 is not retried
  });

  it('a stalled gateway pauses consumption (in flight stays bounded) and it resumes on recovery', async () => {
    const topic = 'orders-stall';
    const g = await gateway(topic);
    g.fault('fn', { hang: true });
    const sent = Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, value: `st-${i}` }));
    await k.produce(topic, sent);
    const { connector, source } = await consume(g, { topics: [topic], group: 'g-stall' }, { maxInFlight: 2 });
    await waitFor(() => g.pending() === 2, 'two held invocations');
    await waitFor(() => source.stats().paused >= 1, 'a paused partition');
    expect(g.pending()).toBeLessThanOrEqual(2);
    expect(connector.inFlight()).toBeLessThanOrEqual(2);
    g.release();
    await waitFor(() => values(g).size === 40, 'all 40 after recovery');
  });

  it('survives a broker restart: the consumer comes back, reports healthy, and nothing is lost', async () => {
    const topic = 'orders-restart';
    const g = await gateway(topic);
    await k.produce(topic, perPartition('before-', 4, 5));
    const { source } = await consume(g, {
      topics: [topic],
      group: 'g-restart',
    });
    await waitFor(
      () => [0, 1, 2, 3].every((p) => committed('g-restart', topic)[p] === 5),
      'first 20 committed',
    );
    expect(source.health?.().connected).toBe(true);
    await k.broker.restart({ downtimeMs: 500 });
    await k.produce(topic, perPartition('after-', 4, 5));
    await waitFor(
      () => [0, 1, 2, 3].every((p) => committed('g-restart', topic)[p] === 10),
      'the next 20 committed after the restart',
    );
    await waitFor(() => source.health?.().connected === true, 'healthy again');
    const n = calls(g);
    expect(n.size).toBe(40);
    expect([...n.values()].every((c) => c === 1)).toBe(true);
  });

  it('produces the function response to replyTopic with the original key, then commits', async () => {
    const topic = 'orders-reply';
    const g = await askUpperCase(topic, 2);
    const { source } = await consume(g, {
      topics: [topic],
      group: 'g-reply',
      replyTopic: 'orders-replies',
    });
    await waitFor(() => committed('g-reply', topic)[2] === 3, 'three committed');
    const replies = k.broker.produced('orders-replies');
    const pairs = replies.map((r) => [r.key?.toString(), r.value?.toString()]);
    expect(pairs.sort((x, y) => String(x[0]).localeCompare(String(y[0])))).toEqual([
      ['key-0', 'ASK-0'],
      ['key-1', 'ASK-1'],
      ['key-2', 'ASK-2'],
    ]);
    expect(replies[0]?.headers.find((h) => h.key === 'X-Function')?.value?.toString()).toBe('fn.openfaas-fn');
    expect(source.stats().replies).toBe(3);
  });

  it('a topic the broker does not have (nor create) stops nothing: the others flow, it is subscribed once it exists', async () => {
    // A broker of its own that creates no topic on request, as production clusters are usually set up.
    const broker = await startKafkaBroker({ port: 0, partitions: 2, autoCreateTopics: false });
    cleanup.add(() => broker.close());
    broker.createTopic('orders', 2);
    const producer = new Kafka({ brokers: broker.brokers, logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    cleanup.add(() => producer.disconnect());
    const g = await startGateway({
      functions: [
        { name: 'orders-fn', annotations: { topic: 'orders' } },
        { name: 'refunds-fn', annotations: { topic: 'refunds' } }, // annotated before its topic exists
      ],
    });
    cleanup.add(() => g.close());
    const logger = memoryLogger();
    const { connector, source } = await connect(
      g,
      { brokers: broker.brokers, group: 'g-missing', topicCheckInterval: 100 },
      { logger },
    );
    cleanup.add(() => connector.stop());
    await producer.send({ topic: 'orders', messages: [{ value: 'o-1' }] });
    await waitFor(() => g.invocations('orders-fn').length === 1, 'the existing topic consumed');
    expect(source.subscribed()).toEqual(['orders']);
    expect(source.health?.().detail?.['missingTopics']).toEqual(['refunds']);
    const warned = logger.lines.filter((l) => l.level === 'warn');
    expect(warned.map((l) => [l.msg, (l.obj as { topics?: unknown }).topics])).toContainEqual([
      'Kafka topics not found (the broker does not create them): consuming the others, looking for these again',
      ['refunds'],
    ]);

    broker.createTopic('refunds', 2);
    await waitFor(() => source.subscribed().length === 2, 'the new topic subscribed');
    await producer.send({ topic: 'refunds', messages: [{ value: 'r-1' }] });
    await producer.send({ topic: 'orders', messages: [{ value: 'o-2' }] });
    await waitFor(
      () => g.invocations('refunds-fn').length === 1 && g.invocations('orders-fn').length === 2,
      'both topics consumed',
    );
    expect(source.health?.().detail?.['missingTopics']).toBeUndefined();
    await waitFor(() => source.health?.().connected === true, 'connected after the resubscription');
  });

  it('follows the functions: a newly annotated topic is subscribed, without waiting on a held record', async () => {
    k.broker.createTopic('events-a', 4);
    k.broker.createTopic('events-b', 4);
    const hold = deferred<void>();
    let held = false;
    const g = await startGateway({
      functions: [
        {
          name: 'fa',
          annotations: { topic: 'events-a' },
          handler: async (req) => {
            if (req.body.toString() === 'held' && !held) {
              held = true;
              await hold.promise;
            }
            return { status: 200 };
          },
        },
      ],
    });
    cleanup.add(() => g.close());
    cleanup.add(async () => hold.resolve());
    // One partition for both records of events-a: old-topic is consumed only after held was redelivered.
    await k.produce('events-a', [{ partition: 0, value: 'held' }]);
    const { source, controller } = await consume(g, {
      group: 'g-follow',
      revokeTimeout: 300,
    });
    expect(source.subscribed()).toEqual(['events-a']);
    await waitFor(() => g.pending() === 1, 'the held record in flight');
    g.addFunction({ name: 'fb', annotations: { topic: 'events-b' } });
    await controller.refresh();
    await waitFor(
      () => source.subscribed().includes('events-b') && source.health?.().connected === true,
      'resubscription',
    );
    expect(g.pending()).toBe(1); // the consumer was re-created while the old record still hangs
    await k.produce('events-b', [{ value: 'new-topic' }]);
    await k.produce('events-a', [{ partition: 0, value: 'old-topic' }]);
    await g.waitForInvocations(1, { fn: 'fb', timeout: 30_000 });
    // Same partition: old-topic comes to the new consumer only after whatever it got before it.
    await waitFor(() => calls(g, 'fa').get('old-topic') === 1, 'old-topic on the old topic');
    expect(g.invocations('fb').map((r) => r.body.toString())).toEqual(['new-topic']);
    // The held record was not committed: the new consumer delivered it again, before the record after it.
    expect(g.invocations('fa').map((r) => r.body.toString())).toEqual(['held', 'held', 'old-topic']);
    expect(source.stats()).toMatchObject({ resubscribed: 1, abandoned: 1 });
    hold.resolve();
  });
  it('hands binary header values and reserved header names over raw: each record once, the partition never stalls', async () => {
    const topic = 'orders-headers';
    const g = await gateway(topic);
    const euroNul = Buffer.from('\u20ac\u0000'); // E2 82 AC 00
    const notUtf8 = Buffer.from([0xff, 0xfe, 0x00]); // would be U+FFFD if decoded as UTF-8
    const hostile = Array.from({ length: 200 }, (_, i) => ({
      partition: 0,
      value: `h-${i}`,
      headers:
        i % 2 === 0
          ? { bin: euroNul, raw: notUtf8 }
          : { Expect: '100-continue', Authorization: 'Bearer stolen', ok: `o${i}` },
    }));
    await k.produce(topic, hostile);
    await k.produce(topic, [{ partition: 0, value: 'normal', headers: { trace: 't-1' } }]);
    const { source } = await consume(g, {
      topics: [topic],
      group: 'g-headers',
    });
    await waitFor(() => calls(g).get('normal') === 1, 'the normal record after 200 hostile ones');
    await waitFor(() => committed('g-headers', topic)[0] === 201, 'the partition committed to the end');
    const n = calls(g);
    expect(n.size).toBe(201);
    expect([...n.entries()].filter(([, c]) => c !== 1)).toEqual([]);
    expect(ok(g)).toHaveLength(201);
    const headers = new Map(ok(g).map((r) => [r.body.toString(), r.headers]));
    // The bytes reach core untouched; its policy percent-encodes them (no U+FFFD, no NUL on the wire).
    expect(headers.get('h-0')).toMatchObject({ bin: '%E2%82%AC%00', raw: '%FF%FE%00' });
    // Reserved names are core's to refuse; the rest of the record's headers still pass.
    expect(headers.get('h-1')?.expect).toBeUndefined();
    expect(headers.get('h-1')?.authorization).toBeUndefined();
    expect(headers.get('h-1')?.ok).toBe('o1');
    expect(headers.get('normal')).toMatchObject({ trace: 't-1', 'x-kafka-offset': '200' });
    expect(source.stats()).toMatchObject({ delivered: 201, redelivered: 0 });
  });

  it.each([
    ['a crash (broker killClient + connector kill)', 'crash'],
    ['a graceful stop', 'stop'],
  ] as const)(
    'redeliver mode: the failed record is not committed before its retry; %s in the retry wait loses nothing',
    async (_, how) => {
      const topic = `orders-redeliver-${how}`;
      const group = `g-redeliver-${how}`;
      let failing = true;
      const g = await gateway(topic, {
        functions: [
          {
            name: 'fn',
            annotations: { topic },
            handler: (req) => (failing && req.body.toString() === 'rc-2' ? { status: 500 } : { status: 200 }),
          },
        ],
      });
      const sent = Array.from({ length: 6 }, (_, i) => ({ partition: 0, value: `rc-${i}` }));
      await k.produce(topic, sent);
      const source = { brokers: k.broker.brokers, topics: [topic], group, commitInterval: 50 };
      const first = await connect(g, { ...source, clientId: `${how}-victim` }, { retry: { maxRetries: 0 } });
      // Counted once the records before it are committed, as the source starts waiting to consume it again.
      await waitFor(() => first.source.stats().redelivered >= 1, 'rc-2 failed, its retry pending');
      expect(committed(group, topic)).toEqual({ 0: 2 });
      if (how === 'crash') {
        k.broker.killClient(`${how}-victim`); // no LeaveGroup, no further commit
        await first.connector.kill();
        k.broker.reviveClient(`${how}-victim`);
      } else await first.connector.stop();
      expect(committed(group, topic)).toEqual({ 0: 2 });
      failing = false;
      const second = await connect(g, { ...source, clientId: `${how}-survivor` });
      cleanup.add(() => second.connector.stop());
      await waitFor(() => committed(group, topic)[0] === 6, 'all six committed after the restart');
      // The next consumer got the failed record (and what followed it), in order.
      expect(second.source.stats().delivered).toBe(4);
      expect(ok(g).map((r) => r.body.toString())).toEqual(['rc-0', 'rc-1', 'rc-2', 'rc-3', 'rc-4', 'rc-5']);
    },
  );

  it('a reply that cannot be produced is not swallowed: the record stays uncommitted and is consumed again', async () => {
    const topic = 'orders-reply-fail';
    const replyTopic = 'orders-reply-fail-replies';
    const g = await askUpperCase(topic, 0);
    const options = {
      brokers: k.broker.brokers,
      topics: [topic],
      group: 'g-reply-fail',
      replyTopic,
      sessionTimeout: 6000,
    };
    // The real kafkajs client; until `fixed`, the reply to ask-1 goes to a topic name the broker refuses, so the
    // produce fails with the broker's own error (INVALID_TOPIC_EXCEPTION).
    const real = kafkajsClient(options);
    let fixed = false;
    let refused = 0;
    const client: KafkaClient = {
      ...real,
      produce: async (t, record) => {
        if (fixed || record.value.toString() !== 'ASK-1') return real.produce(t, record);
        refused++;
        return real.produce('refused topic!', record);
      },
    };
    const logger = memoryLogger();
    const { connector, source } = await connect(g, { ...options, client }, { logger });
    cleanup.add(() => connector.stop());
    // The committed offset at every poll (waitFor takes a throwing condition for "not yet", so no expect in it).
    let highest = 0;
    await waitFor(() => {
      highest = Math.max(highest, committed('g-reply-fail', topic)[0] ?? 0);
      return source.stats().redelivered >= 2;
    }, 'the reply to ask-1 refused twice');
    expect(highest).toBeLessThanOrEqual(1); // never past ask-1
    expect(committed('g-reply-fail', topic)).toEqual({ 0: 1 }); // ask-0 only
    expect(calls(g).get('ask-2')).toBeUndefined(); // order: nothing after ask-1 was delivered
    expect(source.health?.().lastError).toMatch(/^produce to refused topic!: /);
    const notProduced = logger.lines.filter((l) => l.msg === 'reply not produced; record not committed');
    expect(notProduced.length).toBeGreaterThanOrEqual(2);
    expect(notProduced[0]).toMatchObject({ level: 'error', obj: { topic, partition: 0, offset: '1' } });
    fixed = true;
    await waitFor(
      () => committed('g-reply-fail', topic)[0] === 3,
      'all three committed once the reply lands',
    );
    const replies = k.broker.produced(replyTopic).map((r) => `${r.key?.toString()}=${r.value?.toString()}`);
    expect(replies.sort()).toEqual(['key-0=ASK-0', 'key-1=ASK-1', 'key-2=ASK-2']); // once each
    expect(calls(g).get('ask-1')).toBe(refused + 1);
    expect(source.stats()).toMatchObject({ replies: 3, redelivered: refused });
  });
});
