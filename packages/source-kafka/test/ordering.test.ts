import { deferred, startGateway, type TestGateway } from '@connector/testing';
import { describe, expect, it } from 'vitest';
import { kafkaSuite, waitFor } from './helpers.js';

// ordering=none: records of one partition run concurrently; commits never pass an unsettled or failed record.
const { k, cleanup, consume, committedByAdmin } = kafkaSuite({ admin: true });

/** The group's committed offset (the next record to consume) of partition 0, through kafkajs admin; -1: none. */
async function committedAt(group: string, topic: string): Promise<number> {
  return (await committedByAdmin(group, topic))[0] ?? -1;
}

/**
 * Every value the group's committed offset of partition 0 takes, sampled in-process every 2 ms (a commit past a
 * held or failed record shows here even when a later commit moves the offset back), with `when()` at that moment.
 */
function watchCommits<T>(group: string, topic: string, when: () => T): { offset: number; at: T }[] {
  const seen: { offset: number; at: T }[] = [];
  const sample = setInterval(() => {
    const offset = k.broker.committed(group)[topic]?.[0];
    if (offset !== undefined && offset !== seen.at(-1)?.offset) seen.push({ offset, at: when() });
  }, 2);
  cleanup.add(async () => clearInterval(sample));
  return seen;
}

/** A gateway whose `fn` holds each first call until `release(body)`; `answer` may fail one (status). */
async function holdingGateway(topic: string, answer: (body: string, call: number) => number = () => 200) {
  const gates = new Map<string, ReturnType<typeof deferred<void>>>();
  const gate = (body: string) => {
    let d = gates.get(body);
    if (!d) gates.set(body, (d = deferred<void>()));
    return d;
  };
  const calls = new Map<string, number>();
  let open = 0;
  let maxOpen = 0;
  const g: TestGateway = await startGateway({
    functions: [
      {
        name: 'fn',
        annotations: { topic },
        handler: async (req) => {
          const body = req.body.toString();
          const call = (calls.get(body) ?? 0) + 1;
          calls.set(body, call);
          if (call === 1) {
            open++;
            maxOpen = Math.max(maxOpen, open);
            await gate(body).promise;
            open--;
          }
          return { status: answer(body, call), body };
        },
      },
    ],
  });
  cleanup.add(async () => {
    for (const d of gates.values()) d.resolve();
    await g.close();
  });
  return {
    g,
    calls,
    open: () => open,
    maxOpen: () => maxOpen,
    release: (...bodies: string[]) => {
      for (const b of bodies) gate(b).resolve();
    },
  };
}

const N = 10;
const body = (i: number) => `r-${i}`;
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => body(from + i));

/** `N` records `r-<i>` on partition 0 of `topic`, consumed by `group` with ordering=none and no connector retries. */
async function consumeN(g: TestGateway, topic: string, group: string) {
  await k.produce(
    topic,
    Array.from({ length: N }, (_, i) => ({ partition: 0, value: body(i) })),
  );
  const { source } = await consume(
    g,
    { topics: [topic], group, ordering: 'none', commitInterval: 20 },
    { retry: { maxRetries: 0 } },
  );
  return source;
}

describe('Kafka ordering=none against the test broker (real kafkajs)', () => {
  it('runs records of one partition at once; the commit stops before a held middle record until it settles', async () => {
    const topic = 'none-held';
    const group = 'g-none-held';
    const h = await holdingGateway(topic);
    const source = await consumeN(h.g, topic, group);
    let released4 = false;
    const commits = watchCommits(group, topic, () => released4);
    // one partition, yet every record is in the function at once
    await waitFor(
      () => h.open() === N,
      () => `${N} calls held at once (${h.open()})`,
    );
    // successors of the held r-4 first: nothing before them settled, so nothing may be committed
    h.release(...range(5, N));
    await waitFor(() => source.stats().delivered === N - 5, 'r-5..r-9 settled');
    h.release(...range(0, 4));
    await waitFor(() => source.stats().delivered === N - 1, 'all but r-4 settled');
    await waitFor(async () => (await committedAt(group, topic)) >= 4, 'a commit after r-0..r-3');
    expect(await committedAt(group, topic)).toBe(4); // the next to consume is the held r-4
    released4 = true;
    h.release(body(4));
    await waitFor(async () => (await committedAt(group, topic)) === N, 'all committed');
    // while r-4 was held, no commit went past it (r-0..r-3 may have been committed in steps)
    expect(Math.max(...commits.filter((c) => !c.at).map((c) => c.offset))).toBe(4);
    expect(h.maxOpen()).toBe(N);
    expect([...h.calls.values()]).toEqual(Array(N).fill(1)); // each once: nothing failed
    expect(source.stats().redelivered).toBe(0);
  });

  it('a failed middle record is consumed again after its successors succeeded (they come again too)', async () => {
    const topic = 'none-failed';
    const group = 'g-none-failed';
    const h = await holdingGateway(topic, (b, call) => (b === body(4) && call === 1 ? 500 : 200));
    const source = await consumeN(h.g, topic, group);
    const commits = watchCommits(group, topic, () => h.calls.get(body(4)) ?? 0);
    await waitFor(
      () => h.open() === N,
      () => `${N} calls held at once (${h.open()})`,
    );
    h.release(...range(0, 4), ...range(5, N));
    await waitFor(() => source.stats().delivered === N - 1, 'all but r-4 succeeded');
    h.release(body(4)); // fails (500, no retry): nack
    await waitFor(() => (h.calls.get(body(4)) ?? 0) >= 2, 'r-4 consumed again', 10_000);
    await waitFor(async () => (await committedAt(group, topic)) === N, 'all committed');
    expect(source.stats().redelivered).toBe(1);
    // until r-4 came again, no commit went past it (offset 4: the next to consume), though r-5..r-9 had succeeded
    expect(commits.filter((c) => c.at < 2).every((c) => c.offset <= 4)).toBe(true);
    // at-least-once: r-0..r-3 once; r-4 twice; its successors again after the seek back to r-4
    for (const b of range(0, 4)) expect(h.calls.get(b)).toBe(1);
    expect(h.calls.get(body(4))).toBe(2);
    for (const b of range(5, N)) expect(h.calls.get(b)).toBe(2);
  });
});
