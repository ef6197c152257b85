import { deferred, startGateway, type TestGateway } from '@connector/testing';
import { describe, expect, it } from 'vitest';
import { kafkaSuite, waitFor } from './helpers.js';

// Batch delivery (connector.dev/batch-size) end to end: test broker -> kafkajs -> Kafka source -> engine's batcher ->
// one request per batch -> per-item outcome (`batchItemFailures`) -> commit per record.
const { k, cleanup, consume, committedByAdmin: committed } = kafkaSuite({ admin: true });

/** One item of a batch request as the function reads it. */
interface Item {
  id: string;
  body: string;
  partition: number;
  offset: number;
}

/** What the function answers for a batch: the bodies it fails (listed in `batchItemFailures`), after `hold`. */
type Decide = (items: Item[], request: number) => { fail?: string[]; hold?: Promise<void> };

/**
 * A gateway with one batched function `fn` on `topic` (`annotations` added): it records every request's items and
 * answers `batchItemFailures` for the bodies `decide` fails.
 */
async function batchGateway(topic: string, annotations: Record<string, string>, decide: Decide = () => ({})) {
  const requests: Item[][] = [];
  const g: TestGateway = await startGateway({
    functions: [
      {
        name: 'fn',
        annotations: { topic, ...annotations },
        handler: async (req) => {
          expect(req.headers['content-type']).toBe('application/vnd.connector.batch+json');
          const doc = JSON.parse(req.body.toString()) as {
            items: { id: string; body: string; headers: Record<string, string> }[];
          };
          const items = doc.items.map((i) => {
            const h = Object.fromEntries(Object.entries(i.headers).map(([n, v]) => [n.toLowerCase(), v]));
            const item = {
              id: i.id,
              body: i.body,
              partition: Number(h['x-kafka-partition']),
              offset: Number(h['x-kafka-offset']),
            };
            if (!Number.isInteger(item.partition) || !Number.isInteger(item.offset))
              throw new Error(`batch item without X-Kafka-Partition/-Offset: ${JSON.stringify(i.headers)}`);
            return item;
          });
          requests.push(items);
          const { fail = [], hold } = decide(items, requests.length);
          await hold;
          const failed = items.filter((i) => fail.includes(i.body)).map((i) => ({ itemIdentifier: i.id }));
          return { status: 200, body: JSON.stringify({ batchItemFailures: failed }) };
        },
      },
    ],
  });
  cleanup.add(() => g.close());
  /** How often the function got `body`. */
  const calls = (body: string) => requests.flat().filter((i) => i.body === body).length;
  return { g, requests, calls };
}

/** Every committed offset of `topic`'s partitions the group takes, sampled every 2 ms, with `when()` at that time. */
function watchCommits<T>(group: string, topic: string, when: () => T) {
  const seen: { partition: number; offset: number; at: T }[] = [];
  const last = new Map<number, number>();
  const sample = setInterval(() => {
    for (const [p, offset] of Object.entries(k.broker.committed(group)[topic] ?? {})) {
      if (last.get(Number(p)) === offset) continue;
      last.set(Number(p), offset);
      seen.push({ partition: Number(p), offset, at: when() });
    }
  }, 2);
  cleanup.add(async () => clearInterval(sample));
  return seen;
}

/** `count` records on each of `partitions` partitions, valued `p<partition>-<index>`. */
const records = (partitions: number, count: number) =>
  Array.from({ length: partitions * count }, (_, i) => {
    const partition = Math.floor(i / count);
    return { partition, key: `p${partition}`, value: `p${partition}-${i % count}` };
  });

describe('Kafka with batch delivery (connector.dev/batch-size) against the test broker (real kafkajs)', () => {
  it('a batch is sent when full: batch-size records per request, every record once, all committed', async () => {
    const topic = 'batch-size';
    const group = 'g-batch-size';
    // A window far longer than the test: a request that reaches the function was sent because its batch was full.
    const { g, requests } = await batchGateway(topic, {
      'connector.dev/batch-size': '5',
      'connector.dev/batch-window': '10m',
    });
    const sent = Array.from({ length: 20 }, (_, i) => ({ partition: 0, value: `r-${i}` }));
    await k.produce(topic, sent);
    const { source } = await consume(g, {
      topics: [topic],
      group,
      ordering: 'none',
      commitInterval: 20,
    });
    await waitFor(() => source.stats().delivered === 20, 'all 20 delivered');
    expect(requests.map((r) => r.length)).toEqual([5, 5, 5, 5]);
    expect(
      requests
        .flat()
        .map((i) => i.body)
        .sort(),
    ).toEqual(sent.map((r) => r.value).sort());
    await waitFor(async () => (await committed(group, topic))[0] === 20, 'offset 20 committed');
  });

  it('ordering=key over 4 partitions: a full batch takes records of several partitions, each partition in offset order', async () => {
    const topic = 'batch-partitions';
    const group = 'g-batch-partitions';
    const { g, requests } = await batchGateway(topic, {
      'connector.dev/batch-size': '4',
      'connector.dev/batch-window': '10m',
    });
    const sent = records(4, 4);
    await k.produce(topic, sent);
    const { source } = await consume(g, {
      topics: [topic],
      group,
      commitInterval: 20,
    });
    await waitFor(() => source.stats().delivered === 16, 'all 16 delivered');
    // 16 records, batch size 4, no window: four full requests, whichever partitions fill them.
    expect(requests.map((r) => r.length)).toEqual([4, 4, 4, 4]);
    const all = requests.flat();
    expect(all.map((i) => i.body).sort()).toEqual(sent.map((r) => r.value).sort());
    // Each partition's records reach the function in offset order (within a request and across requests).
    for (let p = 0; p < 4; p++)
      expect(all.filter((i) => i.partition === p).map((i) => i.offset)).toEqual([0, 1, 2, 3]);
    await waitFor(
      async () => Object.values(await committed(group, topic)).every((o) => o === 4),
      'every partition committed to 4',
    );
  });

  it('partial failure (ordering=key): exactly the listed items fail, their records are consumed again, commits never pass them', async () => {
    const topic = 'batch-partial';
    const group = 'g-batch-partial';
    // p0-2 is the last record of its partition, p2-1 a middle one; each fails on its first call only.
    const failing = ['p0-2', 'p2-1'];
    const b = await batchGateway(
      topic,
      {
        'connector.dev/batch-size': '4',
        'connector.dev/batch-window': '50ms',
        'com.openfaas.retry.attempts': '1', // no retry in the connector: the source consumes them again
      },
      (items) => ({ fail: items.map((i) => i.body).filter((x) => failing.includes(x) && b.calls(x) === 1) }),
    );
    const sent = records(4, 3);
    await k.produce(topic, sent);
    const { source } = await consume(b.g, {
      topics: [topic],
      group,
      commitInterval: 10,
    });
    const commits = watchCommits(group, topic, () => ({ p0: b.calls('p0-2'), p2: b.calls('p2-1') }));
    await waitFor(() => b.calls('p0-2') === 2 && b.calls('p2-1') === 2, 'both failed records consumed again');
    await waitFor(
      async () => Object.values(await committed(group, topic)).every((o) => o === 3),
      'every partition committed to its end (3)',
    );
    // Nothing lost; the failed ones twice; every record before a failure (and of the other partitions) once.
    for (const r of sent) {
      if (failing.includes(r.value)) expect(b.calls(r.value), r.value).toBe(2);
      else if (r.value === 'p2-2') expect(b.calls(r.value), r.value).toBeGreaterThanOrEqual(1);
      else expect(b.calls(r.value), r.value).toBe(1);
    }
    expect(source.stats().redelivered).toBe(2);
    // Until a failed record came again, its partition's commit never went past it.
    expect(commits.filter((c) => c.partition === 0 && c.at.p0 < 2).every((c) => c.offset <= 2)).toBe(true);
    expect(commits.filter((c) => c.partition === 2 && c.at.p2 < 2).every((c) => c.offset <= 1)).toBe(true);
    expect(commits.some((c) => c.partition === 0 && c.offset === 2)).toBe(true); // the records before it were
    // Order within each partition across the failure: the last time each record reached the function is in offset
    // order (a record consumed again comes before its successors' last delivery).
    const all = b.requests.flat();
    for (let p = 0; p < 4; p++) {
      const lastSeen = [0, 1, 2].map((o) => all.findLastIndex((i) => i.partition === p && i.offset === o));
      expect(lastSeen, `partition ${p}`).toEqual([...lastSeen].sort((x, y) => x - y));
    }
  });

  it('partial failure (ordering=none): only the failed item is retried in a later batch; the commit waits for it', async () => {
    const topic = 'batch-retry';
    const group = 'g-batch-retry';
    const retryHeld = deferred<void>();
    const b = await batchGateway(
      topic,
      {
        'connector.dev/batch-size': '10',
        'connector.dev/batch-window': '100ms',
        'com.openfaas.retry.attempts': '2', // one retry in the connector
      },
      (items) => {
        if (items.some((i) => i.body === 'r-4' && b.calls('r-4') === 2)) return { hold: retryHeld.promise };
        return { fail: b.calls('r-4') === 1 ? ['r-4'] : [] };
      },
    );
    cleanup.add(async () => retryHeld.resolve());
    const sent = Array.from({ length: 10 }, (_, i) => ({ partition: 0, value: `r-${i}` }));
    await k.produce(topic, sent);
    const { source } = await consume(b.g, {
      topics: [topic],
      group,
      ordering: 'none',
      commitInterval: 10,
    });
    let released = false;
    const commits = watchCommits(group, topic, () => released);
    await waitFor(() => b.calls('r-4') === 2, 'r-4 retried');
    await waitFor(() => source.stats().delivered === 9, 'the other nine delivered');
    await waitFor(async () => (await committed(group, topic))[0] === 4, 'r-0..r-3 committed');
    released = true;
    retryHeld.resolve();
    await waitFor(async () => (await committed(group, topic))[0] === 10, 'all committed after the retry');
    // Only r-4 was sent again, alone; the other nine once each; the source consumed nothing again.
    expect(b.requests.at(-1)?.map((i) => i.body)).toEqual(['r-4']);
    for (const r of sent) expect(b.calls(r.value), r.value).toBe(r.value === 'r-4' ? 2 : 1);
    expect(source.stats().redelivered).toBe(0);
    // While r-4's retry was open, no commit passed it, though r-5..r-9 had succeeded.
    expect(Math.max(...commits.filter((c) => !c.at).map((c) => c.offset))).toBe(4);
  });

  it('an item that keeps failing is dead-lettered after its retries; the rest delivered, all committed', async () => {
    const topic = 'batch-dlq';
    const group = 'g-batch-dlq';
    const b = await batchGateway(
      topic,
      {
        'connector.dev/batch-size': '10',
        'connector.dev/batch-window': '50ms',
        'com.openfaas.retry.attempts': '3',
      },
      () => ({ fail: ['r-2'] }),
    );
    const sent = Array.from({ length: 6 }, (_, i) => ({ partition: 0, value: `r-${i}` }));
    await k.produce(topic, sent);
    const { source } = await consume(
      b.g,
      { topics: [topic], group, commitInterval: 10, deadLetterTopic: 'batch-dead' },
      { onFailure: 'dead-letter' },
    );
    await waitFor(() => k.broker.produced('batch-dead').length === 1, 'the dead letter');
    await waitFor(async () => (await committed(group, topic))[0] === 6, 'all committed');
    const dead = k.broker.produced('batch-dead')[0];
    expect(dead?.value?.toString()).toBe('r-2');
    const header = (name: string) => dead?.headers.find((h) => h.key === name)?.value?.toString();
    expect(header('X-Dead-Letter-Function')).toBe('fn.openfaas-fn');
    expect(header('X-Dead-Letter-Attempts')).toBe('3');
    expect(header('X-Kafka-Offset')).toBe('2');
    expect(header('X-Dead-Letter-Reason')).toMatch(/batchItemFailures/);
    for (const r of sent) expect(b.calls(r.value), r.value).toBe(r.value === 'r-2' ? 3 : 1);
    expect(source.stats().deadLettered).toBe(1);
    expect(source.stats().redelivered).toBe(0);
  });

  it('ordering=key on one partition: a retried item keeps its place, the records after it never overtake it', async () => {
    const topic = 'batch-order';
    const group = 'g-batch-order';
    const b = await batchGateway(
      topic,
      {
        'connector.dev/batch-size': '5',
        'connector.dev/batch-window': '30ms',
        'com.openfaas.retry.attempts': '3',
      },
      () => ({ fail: b.calls('o-3') <= 2 ? ['o-3'] : [] }), // o-3 fails twice, then succeeds
    );
    const sent = Array.from({ length: 10 }, (_, i) => ({ partition: 0, value: `o-${i}` }));
    await k.produce(topic, sent);
    const { source } = await consume(b.g, {
      topics: [topic],
      group,
      commitInterval: 10,
    });
    await waitFor(() => source.stats().delivered === 10, 'all 10 delivered');
    await waitFor(async () => (await committed(group, topic))[0] === 10, 'all committed');
    // o-3 three times. From its first call to its last, a later record reached the function only behind it in the
    // same request (held back there, it goes again behind o-3), never in a request without o-3 ahead of it.
    expect(b.calls('o-3')).toBe(3);
    const with3 = b.requests.flatMap((r, n) => (r.some((i) => i.offset === 3) ? [n] : []));
    for (const r of b.requests.slice(with3[0], (with3.at(-1) ?? 0) + 1)) {
      const at3 = r.findIndex((i) => i.offset === 3);
      for (const [n, i] of r.entries())
        if (i.offset > 3) expect(at3 >= 0 && at3 < n, `o-${i.offset}`).toBe(true);
    }
    const all = b.requests.flat().map((i) => i.offset);
    // the last delivery of each record is in offset order
    const lastSeen = sent.map((_, o) => all.lastIndexOf(o));
    expect(lastSeen).toEqual([...lastSeen].sort((x, y) => x - y));
    // within every request, records in offset order
    for (const r of b.requests) {
      const offsets = r.map((i) => i.offset);
      expect(offsets).toEqual([...offsets].sort((x, y) => x - y));
    }
    expect(source.stats().redelivered).toBe(0);
  });
});
