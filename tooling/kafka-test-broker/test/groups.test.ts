import type { Consumer, Producer } from 'kafkajs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type KafkaTestBroker, startKafkaBroker } from '../src/index.js';
import { kafka, waitFor } from './helpers.js';

let broker: KafkaTestBroker;
const cleanups: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  broker = await startKafkaBroker();
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await broker.close();
});

async function producer(): Promise<Producer> {
  const p = kafka(broker.brokers, 'producer').producer();
  await p.connect();
  cleanups.push(() => p.disconnect());
  return p;
}

function consumer(clientId: string, groupId: string, heartbeatInterval = 200): Consumer {
  const c = kafka(broker.brokers, clientId).consumer({
    groupId,
    sessionTimeout: 6000,
    rebalanceTimeout: 10_000,
    heartbeatInterval,
    maxWaitTimeInMs: 100,
  });
  cleanups.push(() => c.disconnect());
  return c;
}

async function produceNumbered(p: Producer, topic: string, from: number, count: number): Promise<void> {
  const messages = Array.from({ length: count }, (_, i) => ({
    key: `k${(from + i) % 31}`,
    value: String(from + i),
  }));
  await p.send({ topic, messages });
}

interface Seen {
  by: string;
  partition: number;
  offset: number;
  value: string;
}

function stableWith(groupId: string, memberCount: number, partitions: number) {
  const g = broker.group(groupId);
  if (g?.state !== 'Stable' || g.members.length !== memberCount) return false;
  const assigned = g.members.flatMap((m) => Object.values(m.assignment).flat());
  return assigned.length === partitions && new Set(assigned).size === partitions ? g : false;
}

describe('consumer groups', () => {
  it('a second member triggers a rebalance that splits partitions; nothing lost, nothing re-processed below a commit', async () => {
    broker.createTopic('split', 4);
    const p = await producer();
    const total = 2000;
    await produceNumbered(p, 'split', 0, total);

    const seen: Seen[] = [];
    const violations: string[] = [];
    const firstSeen = new Map<string, string>();
    const handler =
      (by: string, gate?: () => Promise<void>) =>
      async ({
        partition,
        message,
      }: {
        partition: number;
        message: { offset: string; value: Buffer | null };
      }) => {
        if (gate) await gate();
        const offset = Number(message.offset);
        const k = `${partition}/${offset}`;
        if (firstSeen.has(k)) {
          // Processing twice is only allowed for what was not committed yet.
          const committed = broker.committed('split-group')['split']?.[partition] ?? 0;
          if (offset < committed) violations.push(`${k} re-processed by ${by} below committed ${committed}`);
        } else {
          firstSeen.set(k, by);
        }
        seen.push({ by, partition, offset, value: String(message.value) });
      };

    // kafkajs heartbeats between messages at most every heartbeatInterval; 1 ms makes A notice the
    // rebalance right after its gate instead of finishing the whole fetched batch first.
    const a = consumer('member-a', 'split-group', 1);
    await a.connect();
    await a.subscribe({ topic: 'split', fromBeginning: true });
    let processedByA = 0;
    let generationWithA = Number.POSITIVE_INFINITY;
    // After 100 messages, A waits until B's JoinGroup has started a rebalance (or one already completed),
    // so the hand-over happens mid-stream, never after A drained everything.
    const gateA = async () => {
      processedByA += 1;
      if (processedByA === 100) {
        await waitFor(
          () => {
            const g = broker.group('split-group');
            return g !== undefined && (g.state === 'PreparingRebalance' || g.generationId > generationWithA);
          },
          { message: 'B joining' },
        );
      }
    };
    await a.run({ eachMessage: handler('a', gateA) });
    await waitFor(() => stableWith('split-group', 1, 4), { message: 'A owning all 4 partitions' });
    generationWithA = broker.group('split-group')!.generationId;

    const b = consumer('member-b', 'split-group', 1);
    await b.connect();
    await b.subscribe({ topic: 'split', fromBeginning: true });
    await b.run({ eachMessage: handler('b') });

    const group = await waitFor(() => stableWith('split-group', 2, 4), {
      message: 'two members splitting 4 partitions',
    });
    expect(group.generationId).toBeGreaterThan(generationWithA);
    for (const m of group.members) expect(Object.values(m.assignment).flat()).toHaveLength(2);

    await waitFor(() => firstSeen.size >= total, { timeout: 20_000, message: `${total} distinct messages` });
    expect(firstSeen.size).toBe(total);
    expect(new Set(seen.map((s) => s.value))).toEqual(
      new Set(Array.from({ length: total }, (_, i) => String(i))),
    );
    expect(violations).toEqual([]);
    // kafkajs commits what it processed before rejoining, so in fact nothing at all is processed twice.
    expect(seen).toHaveLength(total);
    expect(seen.filter((s) => s.by === 'b').length).toBeGreaterThan(0);
    expect(seen.filter((s) => s.by === 'a').length).toBeGreaterThanOrEqual(100);
  });

  it('evicts a member that vanished without LeaveGroup after its session timeout and moves its partitions', async () => {
    broker.createTopic('evict', 4);
    const p = await producer();
    const victim = consumer('victim', 'evict-group');
    const survivor = consumer('survivor', 'evict-group');
    const seenBy = { victim: new Set<number>(), survivor: new Set<number>() };
    const values: string[] = [];
    for (const [name, c] of [
      ['victim', victim],
      ['survivor', survivor],
    ] as const) {
      await c.connect();
      await c.subscribe({ topic: 'evict', fromBeginning: true });
      await c.run({
        eachMessage: async ({ partition, message }) => {
          seenBy[name].add(partition);
          values.push(String(message.value));
        },
      });
    }
    const before = await waitFor(() => stableWith('evict-group', 2, 4), { message: 'two members' });
    const victimId = before.members.find((m) => m.clientId === 'victim')!.memberId;

    // The victim's process "dies": its sockets are cut and it cannot reach the broker any more.
    broker.killClient('victim');
    // Until the session times out, the victim still counts as a member.
    expect(broker.members('evict-group').map((m) => m.memberId)).toContain(victimId);

    const after = await waitFor(() => stableWith('evict-group', 1, 4), {
      timeout: 15_000,
      message: 'the survivor owning all 4 partitions',
    });
    expect(after.members[0]!.clientId).toBe('survivor');
    expect(after.generationId).toBeGreaterThan(before.generationId);

    seenBy.survivor.clear();
    await produceNumbered(p, 'evict', 0, 200);
    await waitFor(() => values.length >= 200, { message: '200 messages after eviction' });
    expect(seenBy.survivor).toEqual(new Set([0, 1, 2, 3]));
    expect(new Set(values).size).toBe(200);
  }, 30_000);

  it('a restarted consumer resumes from the committed offsets', async () => {
    broker.createTopic('resume', 2);
    const p = await producer();
    await produceNumbered(p, 'resume', 0, 300);

    const first = consumer('first', 'resume-group');
    const firstValues: string[] = [];
    await first.connect();
    await first.subscribe({ topic: 'resume', fromBeginning: true });
    await first.run({ eachMessage: async ({ message }) => void firstValues.push(String(message.value)) });
    await waitFor(
      () => {
        const committed = broker.committed('resume-group')['resume'] ?? {};
        return broker.endOffsets('resume').every((end, i) => committed[i] === end);
      },
      { message: 'all 300 committed' },
    );
    expect(firstValues).toHaveLength(300);
    await first.disconnect();
    expect(broker.group('resume-group')?.state).toBe('Empty');
    const committedBefore = broker.committed('resume-group');

    await produceNumbered(p, 'resume', 300, 100);
    const second = consumer('second', 'resume-group');
    const secondValues: string[] = [];
    await second.connect();
    await second.subscribe({ topic: 'resume', fromBeginning: true });
    await second.run({ eachMessage: async ({ message }) => void secondValues.push(String(message.value)) });
    await waitFor(() => secondValues.length >= 100, { message: '100 new messages' });
    await waitFor(
      () => {
        const committed = broker.committed('resume-group')['resume'] ?? {};
        return broker.endOffsets('resume').every((end, i) => committed[i] === end);
      },
      { message: 'all 400 committed' },
    );

    expect(secondValues.map(Number).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 100 }, (_, i) => 300 + i),
    );
    expect(Object.values(committedBefore['resume']!).reduce((x, y) => x + y, 0)).toBe(300);
  });
});
