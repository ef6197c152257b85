import { setTimeout as delay } from 'node:timers/promises';
import { BrokerError } from '@connector/core';
import {
  createTestContext,
  deferred,
  hold,
  memoryLogger,
  outcomes,
  startGateway,
  type TestContext,
  type TestGateway,
} from '@connector/testing';
import { describe, expect, it } from 'vitest';
import { type KafkaClient, kafkajsClient, kafkaSource } from '../src/index.js';
import { connect, kafkaSuite, waitFor } from './helpers.js';

// When the source commits (and what it produces as a reply) against the test broker with the real kafkajs client.
const { k, cleanup, consume } = kafkaSuite();

/** Committed offset per partition of `topic` for `group`. */
const committed = (group: string, topic: string): Record<number, number> =>
  k.broker.committed(group)[topic] ?? {};

/** Records `<prefix>-0` … `<prefix>-<n-1>` on partition 0 of `topic`, in that order. */
const produceSeries = (topic: string, prefix: string, n: number) =>
  k.produce(
    topic,
    Array.from({ length: n }, (_, i) => ({ partition: 0, value: `${prefix}-${i}` })),
  );

/** The Kafka source alone (no connector) against a test context, on `topic` as `group`; stopped after the test. */
async function startAlone(test: TestContext, topic: string, group: string, commitInterval: number) {
  const source = kafkaSource({
    brokers: k.broker.brokers,
    topics: [topic],
    group,
    commitInterval,
    sessionTimeout: 6000,
  });
  await source.start(test);
  cleanup.add(() => source.stop());
  return source;
}

async function gateway(topic: string, handler: (body: string) => Promise<number> | number = () => 200) {
  const g: TestGateway = await startGateway({
    functions: [
      {
        name: 'fn',
        annotations: { topic },
        handler: async (req) => {
          const body = req.body.toString();
          return { status: await handler(body), body: body.toUpperCase() };
        },
      },
    ],
  });
  cleanup.add(() => g.close());
  return g;
}

describe('Kafka source commits (test broker, real kafkajs)', () => {
  it('a commit the broker refuses is reported, and the same offset is committed next time: nothing skipped', async () => {
    const topic = 'commit-refused';
    await produceSeries(topic, 'c', 5);
    // c-4 is held: the batch stays open, so the periodic commits of c-0..c-3 happen within it.
    const hold = deferred<void>();
    cleanup.add(async () => hold.resolve());
    const g = await gateway(topic, async (body) => {
      if (body === 'c-4') await hold.promise;
      return 200;
    });
    const options = {
      brokers: k.broker.brokers,
      topics: [topic],
      group: 'g-commit-refused',
      commitInterval: 50,
    };
    // The real client; its first commit is refused as a broker would (a BrokerError), the rest go through.
    const real = kafkajsClient(options);
    let refused = 0;
    const client: KafkaClient = {
      ...real,
      consume: (topics, onBatch, onCrash, onStatus) =>
        real.consume(
          topics,
          (records, control) =>
            onBatch(records, {
              active: () => control.active(),
              revoked: control.revoked,
              pause: () => control.pause(),
              seek: (offset) => control.seek(offset),
              commit: (offset) => {
                if (refused++ === 0)
                  return Promise.reject(new BrokerError('ERR_BROKER', 'commit refused by the test'));
                return control.commit(offset);
              },
            }),
          onCrash,
          onStatus,
        ),
    };
    const logger = memoryLogger();
    const { connector, source } = await connect(g, { ...options, client }, { logger });
    cleanup.add(() => connector.stop());
    // The first periodic commit (of c-3) is refused; the next one commits the same offset.
    await waitFor(() => committed('g-commit-refused', topic)[0] === 4, 'c-0..c-3 committed');
    expect(g.pending()).toBe(1);
    expect(refused).toBeGreaterThanOrEqual(2);
    expect(source.health?.().lastError).toMatch(/commit refused by the test/);
    const warned = logger.lines.filter(
      (l) => l.level === 'warn' && l.msg?.startsWith('offset commit failed'),
    );
    expect(warned).toHaveLength(1);
    expect(warned[0]?.obj).toMatchObject({ topic, partition: 0 });
    hold.resolve();
    // The broker stores the offset before kafkajs reads its answer: wait for the source to count it too.
    await waitFor(
      () => committed('g-commit-refused', topic)[0] === 5 && source.stats().committed >= 2,
      'all five committed, and counted once the broker answered',
    );
    expect(source.stats()).toMatchObject({ delivered: 5, redelivered: 0 });
    expect(g.invocations('fn')).toHaveLength(5); // a refused commit redelivers nothing while the batch runs
  });

  it('the client: a seek ends its batch (active() turns false at once) and the partition is consumed again from there', async () => {
    const topic = 'client-seek';
    await produceSeries(topic, 's', 3);
    const client = kafkajsClient({ brokers: k.broker.brokers, topics: [topic], group: 'g-client-seek' });
    cleanup.add(() => client.close());
    const seen: string[] = [];
    const activeAfterSeek: boolean[] = [];
    let sought = false;
    await client.consume(
      [topic],
      async (records, control) => {
        for (const r of records) {
          if (!control.active()) break;
          seen.push(String(r.value));
          if (!sought && String(r.value) === 's-1') {
            sought = true;
            control.seek(r.offset); // s-1 again, as a redelivery would
            activeAfterSeek.push(control.active());
          }
        }
        const last = records.at(-1);
        if (control.active() && last) await control.commit(last.offset);
      },
      (err) => {
        throw err;
      },
    );
    await waitFor(() => seen.filter((v) => v === 's-2').length === 1, 'the partition consumed to its end');
    expect(activeAfterSeek).toEqual([false]);
    expect(seen).toEqual(['s-0', 's-1', 's-1', 's-2']); // nothing after the seek in that batch, then from s-1 again
  });

  it('commits every 100 settled records during a long batch, whatever the commit interval', async () => {
    const topic = 'commit-count';
    const n = 150;
    await produceSeries(topic, 'r', n);
    const hold = deferred<void>();
    cleanup.add(async () => hold.resolve());
    const g = await gateway(topic, async (body) => {
      if (body === 'r-120') await hold.promise;
      return 200;
    });
    const { source } = await consume(g, {
      topics: [topic],
      group: 'g-commit-count',
      commitInterval: 600_000,
    });
    await waitFor(() => g.pending() === 1, 'r-120 held');
    await waitFor(
      () => committed('g-commit-count', topic)[0] === 100 && source.stats().committed >= 1,
      'the first 100 committed, and counted once the broker answered',
    );
    expect(source.stats().committed).toBe(1);
    hold.resolve();
    await waitFor(() => committed('g-commit-count', topic)[0] === n, 'the rest committed at the batch end');
    // One commit at 100, one at the end of the batch (the interval never fired): not one per record.
    expect(source.stats().committed).toBeLessThanOrEqual(3);
    expect(source.stats().delivered).toBe(n);
  });

  it('replies only for a delivered record: a dead-lettered one gets no reply, and both are committed', async () => {
    const topic = 'commit-reply-dlq';
    const replyTopic = 'commit-reply-dlq-replies';
    await k.produce(topic, [
      { partition: 0, key: 'a', value: 'poison' },
      { partition: 0, key: 'b', value: 'fine' },
    ]);
    const g = await gateway(topic, (body) => (body === 'poison' ? 500 : 200));
    const { source } = await consume(
      g,
      { topics: [topic], group: 'g-reply-dlq', replyTopic, deadLetterTopic: 'commit-reply-dlq-dead' },
      { onFailure: 'dead-letter', retry: { maxRetries: 1 } },
    );
    await waitFor(() => committed('g-reply-dlq', topic)[0] === 2, 'both committed');
    expect(k.broker.produced('commit-reply-dlq-dead').map((r) => r.value?.toString())).toEqual(['poison']);
    const replies = k.broker.produced(replyTopic);
    expect(replies.map((r) => `${r.key?.toString()}=${r.value?.toString()}`)).toEqual(['b=FINE']);
    const header = (name: string) => replies[0]?.headers.find((h) => h.key === name)?.value?.toString();
    expect(header('X-Function')).toBe('fn.openfaas-fn');
    expect(header('X-Function-Status')).toBe('200');
    expect(header('X-Kafka-Request-Offset')).toBe(`${topic}/0/1`);
    expect(source.stats()).toMatchObject({ replies: 1, deadLettered: 1 });
  });

  it('commits on its interval (1 s by default), not once per settled record', async () => {
    const topic = 'commit-default-interval';
    const n = 30;
    await produceSeries(topic, 'd', n);
    // Each call takes the function 5 ms: the 30 records settle one by one over at least 150 ms.
    const g = await gateway(topic, async () => {
      await delay(5);
      return 200;
    });
    const { source } = await consume(g, {
      topics: [topic],
      group: 'g-commit-default',
    });
    await waitFor(
      () => committed('g-commit-default', topic)[0] === n && source.stats().committed >= 1,
      'all committed, and counted once the broker answered',
    );
    expect(source.stats().delivered).toBe(n);
    // The end of each batch and the odd interval tick, not one commit per record.
    expect(source.stats().committed).toBeLessThanOrEqual(4);
  });

  it('a record cut off by a hard stop (drain timeout) stays uncommitted for the next owner, not retried here', async () => {
    const topic = 'commit-hard-stop';
    await k.produce(topic, [
      { partition: 0, value: 'h-0' },
      { partition: 0, value: 'h-1' },
    ]);
    const hold = deferred<void>();
    cleanup.add(async () => hold.resolve());
    const g = await gateway(topic, async (body) => {
      if (body === 'h-1') await hold.promise;
      return 200;
    });
    const { connector, source } = await connect(
      g,
      { brokers: k.broker.brokers, topics: [topic], group: 'g-hard-stop', commitInterval: 20 },
      { drainTimeout: 100 },
    );
    await waitFor(
      () => g.pending() === 1 && committed('g-hard-stop', topic)[0] === 1,
      'h-0 committed, h-1 held',
    );
    await connector.stop(); // the drain times out: h-1's delivery ends with a ShutdownError
    expect(committed('g-hard-stop', topic)).toEqual({ 0: 1 });
    // Not settled, so not failed either: no redelivery of it in this session, no back-off. And offset 0 was
    // committed once, though the 20 ms interval went off again and again while h-1 was held.
    expect(source.stats()).toMatchObject({ delivered: 1, redelivered: 0, committed: 1 });
  });

  it('a delivery that rejects unexpectedly is logged and its record consumed again, nothing committed past it', async () => {
    const topic = 'commit-unexpected';
    await produceSeries(topic, 'u', 3);
    const logger = memoryLogger();
    let failures = 0;
    // Not an outcome the engine gives: an error that is not a ShutdownError, once, for u-1.
    const test = createTestContext({
      topics: [topic],
      logger,
      answer: (m) =>
        Buffer.from(m.body).toString() === 'u-1' && failures++ === 0
          ? Promise.reject(new TypeError('unexpected'))
          : outcomes.delivered(),
    });
    const source = await startAlone(test, topic, 'g-unexpected', 20);
    await waitFor(() => committed('g-unexpected', topic)[0] === 3, 'all three committed after the retry');
    expect(test.bodies()).toEqual(['u-0', 'u-1', 'u-1', 'u-2']);
    expect(source.stats()).toMatchObject({ delivered: 3, redelivered: 1 });
    const logged = logger.lines.filter((l) => l.msg === 'delivery failed unexpectedly; record not committed');
    expect(logged).toHaveLength(1);
    expect(logged[0]?.obj).toMatchObject({ topic, partition: 0, offset: '1', err: 'unexpected' });
  });

  it('once a stop begins, the record in flight settles and is committed; the rest of its batch is not offered', async () => {
    const topic = 'commit-stop-batch';
    await produceSeries(topic, 's', 4);
    const test = createTestContext({
      topics: [topic],
      answer: (m) => (Buffer.from(m.body).toString() === 's-1' ? hold(m, 1) : outcomes.delivered()),
    });
    const source = await startAlone(test, topic, 'g-stop-batch', 600_000);
    await waitFor(() => test.open() === 1 && test.bodies().length === 2, 's-1 in flight');
    test.close(); // what a graceful connector stop does first: the signal aborts, new deliveries are refused
    expect(test.settle(outcomes.delivered())).toBe(1);
    await source.stop();
    expect(test.bodies()).toEqual(['s-0', 's-1']); // s-2 and s-3 stay at the broker for the next consumer
    expect(committed('g-stop-batch', topic)).toEqual({ 0: 2 });
  });
});
