import type {
  ChangeMessageVisibilityBatchCommandInput,
  ChangeMessageVisibilityBatchCommandOutput,
} from '@aws-sdk/client-sqs';
import { memoryLogger } from '@connector/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Received } from '../src/queue.js';
import { newStats } from '../src/stats.js';
import { Visibility } from '../src/visibility.js';
import { sqsSuite, waitFor } from './helpers.js';

// Heartbeats against fauxqs: the messages of one receive share one timer, and each beat is one
// ChangeMessageVisibilityBatch for those still running. Only the interval timers are fake (a beat is every half
// visibility timeout, seconds): the calls themselves go to fauxqs. A client middleware records each call and may
// report entries as failed (fauxqs never does).

const { sqs } = sqsSuite();

afterEach(() => {
  vi.useRealTimers();
});

let queues = 0;

/** A queue with a 4 s visibility timeout holding `n` messages, all received. */
const receivedMessages = (n: number) => sqs.received(`beat-${++queues}`, n, 4);

/** Heartbeats on a client that records each ChangeMessageVisibilityBatch call; `failIds` marks entries as failed. */
function heartbeats(on = true) {
  const { client, count } = sqs.countingClient();
  const calls: { receipts: string[]; seconds: (number | undefined)[] }[] = [];
  let failIds = new Set<string>();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'ChangeMessageVisibilityBatchCommand') return next(args);
      const input = args.input as ChangeMessageVisibilityBatchCommandInput;
      const entries = input.Entries ?? [];
      calls.push({
        receipts: entries.map((e) => e.ReceiptHandle ?? ''),
        seconds: entries.map((e) => e.VisibilityTimeout),
      });
      const res = await next({
        ...args,
        input: { ...input, Entries: entries.filter((e) => !failIds.has(e.Id ?? '')) },
      });
      const output = res.output as ChangeMessageVisibilityBatchCommandOutput;
      output.Failed = entries
        .filter((e) => failIds.has(e.Id ?? ''))
        .map((e) => ({ Id: e.Id, Code: 'ReceiptHandleIsInvalid', Message: 'injected', SenderFault: true }));
      return res;
    },
    { step: 'initialize', name: 'beatFaults', priority: 'low' },
  );
  const stats = newStats();
  const log = memoryLogger();
  return {
    v: new Visibility(client, stats, log, on),
    calls,
    stats,
    log,
    count,
    fail: (ids: string[]) => {
      failIds = new Set(ids);
    },
  };
}

describe('Visibility heartbeats (fauxqs)', () => {
  it('extends the running messages of one receive in one call per beat, and stops with the last of them', async () => {
    const { queue, received } = await receivedMessages(3);
    const [a, b, c] = received as [Received, Received, Received];
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const h = heartbeats();
    h.v.watch(queue, received);
    expect(vi.getTimerCount()).toBe(1); // one timer for the receive, not one per message
    h.v.unwatch(c); // settled before the first beat

    vi.advanceTimersByTime(2000); // half of the 4 s visibility timeout
    await waitFor(() => h.stats.extended === 2, 'the first beat extended the two running messages');
    expect(h.calls).toEqual([{ receipts: [a.receipt, b.receipt], seconds: [4, 4] }]);
    expect(h.count('ChangeMessageVisibility')).toBe(0);

    h.v.unwatch(a);
    vi.advanceTimersByTime(2000);
    await waitFor(() => h.stats.extended === 3, 'the second beat extended the one still running');
    expect(h.calls.at(-1)).toEqual({ receipts: [b.receipt], seconds: [4] });

    h.v.unwatch(b);
    expect(b.heartbeat).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0); // the last message of the receive ended its heartbeat
    expect(h.log.lines).toEqual([]);
  });

  it('takes at most 10 entries a call (the SQS limit)', async () => {
    const { queue, received } = await receivedMessages(12);
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const h = heartbeats();
    h.v.watch(queue, received);
    vi.advanceTimersByTime(2000);
    await waitFor(() => h.stats.extended === 12, 'all 12 extended');
    expect(h.calls.map((c) => c.receipts.length).sort()).toEqual([10, 2]);
    for (const m of received) h.v.unwatch(m);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('logs failed entries of messages still running, not of one that settled while the call was out', async () => {
    const { queue, received } = await receivedMessages(3);
    const [a, b, c] = received as [Received, Received, Received];
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const h = heartbeats();
    h.fail(['0', '1']);
    h.v.watch(queue, received);
    vi.advanceTimersByTime(2000);
    h.v.unwatch(a); // settled (and deleted) after the beat began: its failed entry is no news
    await waitFor(() => h.log.lines.length === 1, 'one warning');
    expect(h.stats.extended).toBe(1); // only the successful entry counts
    expect(h.log.lines[0]).toMatchObject({
      level: 'warn',
      obj: { queue: queue.name, count: 1, reason: ['ReceiptHandleIsInvalid: injected'] },
    });
    h.v.unwatch(b);
    h.v.unwatch(c);
  });

  it('without heartbeats (the option off, or the timeout unknown or under 2 s): no timer at all', async () => {
    const { queue, received } = await receivedMessages(1);
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    heartbeats(false).v.watch(queue, received);
    heartbeats().v.watch({ ...queue, visibility: undefined }, received);
    heartbeats().v.watch({ ...queue, visibility: 1 }, received);
    expect(vi.getTimerCount()).toBe(0);
    expect(received[0]?.heartbeat).toBeUndefined();
  });
});
