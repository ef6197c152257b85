import { startGateway, type TestGateway } from '@connector/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, startKafka, waitFor } from './helpers.js';

let k: Awaited<ReturnType<typeof startKafka>>;
const cleanups: (() => Promise<unknown>)[] = [];
beforeAll(async () => {
  k = await startKafka();
});
afterAll(async () => k.close());
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function gateway(topic: string, extra: Parameters<typeof startGateway>[0] = {}): Promise<TestGateway> {
  const g = await startGateway({ functions: [{ name: 'fn', annotations: { topic } }], ...extra });
  cleanups.push(() => g.close());
  return g;
}
const ok = (g: TestGateway) => g.invocations('fn').filter((r) => r.status === 200);
const values = (g: TestGateway) => new Set(ok(g).map((r) => r.body.toString()));

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
    const { connector, source } = await connect(g, {
      brokers: k.broker.brokers,
      topics: [topic],
      group: 'g-all',
    });
    cleanups.push(() => connector.stop());
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

  it('a connector killed mid-stream and restarted redelivers what was not committed: nothing lost', async () => {
    const topic = 'orders-kill';
    const g = await gateway(topic);
    g.fault('fn', { hang: true });
    const sent = Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: `kill-${i}` }));
    await k.produce(topic, sent);
    const first = await connect(g, {
      brokers: k.broker.brokers,
      topics: [topic],
      group: 'g-kill',
      clientId: 'victim',
    });
    await waitFor(() => g.pending() >= 1, 'a held invocation');
    k.broker.killClient('victim');
    await first.connector.kill();
    k.broker.reviveClient('victim');
    g.fault('fn', null);
    const second = await connect(g, {
      brokers: k.broker.brokers,
      topics: [topic],
      group: 'g-kill',
      clientId: 'survivor',
    });
    cleanups.push(() => second.connector.stop());
    await waitFor(() => values(g).size === 20, 'all 20 after the restart', 45_000);
    expect(values(g)).toEqual(new Set(sent.map((m) => m.value)));
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
    cleanups.push(
      () => a.connector.stop(),
      () => b.connector.stop(),
    );
    await waitFor(
      () => k.broker.group('g-split')?.state === 'Stable' && k.broker.members('g-split').length === 2,
      'a stable group of 2',
    );
    const sent = Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: `s-${i}` }));
    await k.produce(topic, sent);
    await waitFor(() => values(g).size === 100, '100 deliveries');
    expect(a.source.stats().delivered).toBeGreaterThan(0);
    expect(b.source.stats().delivered).toBeGreaterThan(0);
    expect(a.source.stats().delivered + b.source.stats().delivered).toBeGreaterThanOrEqual(100);
  });

  it('a failing function with a dead-letter topic: the record lands there and its offset is committed', async () => {
    const topic = 'orders-dlq';
    const g = await gateway(topic, {
      functions: [{ name: 'fn', annotations: { topic }, handler: () => ({ status: 500, body: 'boom' }) }],
    });
    await k.produce(topic, [{ key: 'bad', value: 'poison' }]);
    const controllerSource = {
      brokers: k.broker.brokers,
      topics: [topic],
      group: 'g-dlq',
      deadLetterTopic: 'orders-dead',
    };
    const { kafkaSource } = await import('../src/index.js');
    const { createConnector, createController } = await import('@connector/core');
    const source = kafkaSource({ sessionTimeout: 6000, ...controllerSource });
    const connector = createConnector({
      controller: createController({ gatewayUrl: g.url }),
      source,
      onFailure: 'dead-letter',
      ...(source.deadLetter ? { deadLetter: source.deadLetter } : {}),
      retry: { maxRetries: 1, minDelay: 1, maxDelay: 5 },
    });
    cleanups.push(() => connector.stop());
    await connector.start();
    await waitFor(() => k.broker.produced('orders-dead').length === 1, 'the dead letter');
    const dead = k.broker.produced('orders-dead')[0];
    expect(dead?.value?.toString()).toBe('poison');
    expect(dead?.key?.toString()).toBe('bad');
    const header = (name: string) => dead?.headers.find((h) => h.key === name)?.value?.toString();
    expect(header('X-Dead-Letter-Function')).toBe('fn.openfaas-fn');
    expect(header('X-Dead-Letter-Status')).toBe('500');
    expect(header('X-Kafka-Offset')).toBe('0');
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
    const { connector, source } = await connect(
      g,
      { brokers: k.broker.brokers, topics: [topic], group: 'g-stall' },
      { maxInFlight: 2 },
    );
    cleanups.push(() => connector.stop());
    await waitFor(() => g.pending() === 2, 'two held invocations');
    await waitFor(() => source.stats().paused >= 1, 'a paused partition');
    expect(g.pending()).toBeLessThanOrEqual(2);
    expect(connector.inFlight()).toBeLessThanOrEqual(2);
    g.release();
    await waitFor(() => values(g).size === 40, 'all 40 after recovery');
  });

  it('follows the functions: a newly annotated topic is subscribed', async () => {
    k.broker.createTopic('events-a', 4);
    k.broker.createTopic('events-b', 4);
    const g = await startGateway({ functions: [{ name: 'fa', annotations: { topic: 'events-a' } }] });
    cleanups.push(() => g.close());
    const { connector, source, controller } = await connect(g, {
      brokers: k.broker.brokers,
      group: 'g-follow',
    });
    cleanups.push(() => connector.stop());
    expect(source.subscribed()).toEqual(['events-a']);
    g.addFunction({ name: 'fb', annotations: { topic: 'events-b' } });
    await controller.refresh();
    await waitFor(
      () => source.subscribed().includes('events-b') && source.health?.().connected === true,
      'resubscription',
    );
    await k.produce('events-b', [{ value: 'new-topic' }]);
    await k.produce('events-a', [{ value: 'old-topic' }]);
    await g.waitForInvocations(1, { fn: 'fb', timeout: 30_000 });
    await g.waitForInvocations(1, { fn: 'fa', timeout: 30_000 });
    expect(g.invocations('fb')[0]?.body.toString()).toBe('new-topic');
  });
});
