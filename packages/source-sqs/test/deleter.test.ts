import type {
  BatchResultErrorEntry,
  DeleteMessageBatchCommandInput,
  DeleteMessageBatchCommandOutput,
} from '@aws-sdk/client-sqs';
import { HealthState } from '@connector/core';
import { memoryLogger } from '@connector/testing';
import { describe, expect, it } from 'vitest';
import { Deleter } from '../src/deleter.js';
import type { Received } from '../src/queue.js';
import { newStats } from '../src/stats.js';
import { sqsSuite, waitFor } from './helpers.js';

// The deleter against fauxqs: which DeleteMessageBatch calls leave, with which entries, and what a failed call or
// entry does (retried, then given up: SQS redelivers). fauxqs never fails an entry; a client middleware injects it.

const { sqs } = sqsSuite();

let queues = 0;

/** A queue holding `n` messages, all received (invisible for 60 s) and ready to delete. */
const receivedMessages = (n: number) => sqs.received(`del-${++queues}`, n, 60);

type Fault = (
  input: DeleteMessageBatchCommandInput,
  call: number,
) => 'throw' | DeleteMessageBatchCommandOutput['Failed'] | undefined;

/**
 * A deleter on a client that records each DeleteMessageBatch call's queue and receipt handles; `fault` may make a
 * call throw or report some of its entries as failed (after sending the others), as SQS can.
 */
function deleter(fault: Fault = () => undefined, omitEmptyLists = false) {
  const { client } = sqs.countingClient();
  const calls: { queue: string; receipts: string[] }[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'DeleteMessageBatchCommand') return next(args);
      const input = args.input as DeleteMessageBatchCommandInput;
      const entries = input.Entries ?? [];
      calls.push({ queue: input.QueueUrl ?? '', receipts: entries.map((e) => e.ReceiptHandle ?? '') });
      const f = fault(input, calls.length);
      if (f === 'throw') throw Object.assign(new Error('injected outage'), { name: 'InternalError' });
      const failedIds = new Set((f ?? []).map((x) => x.Id));
      const rest = entries.filter((e) => !failedIds.has(e.Id));
      const res =
        rest.length > 0
          ? await next({ ...args, input: { ...input, Entries: rest } })
          : { output: { Successful: [], $metadata: {} }, response: {} };
      const output = res.output as DeleteMessageBatchCommandOutput;
      output.Failed = [...(output.Failed ?? []), ...(f ?? [])];
      // An answer may leave out an empty list (SQS's JSON protocol omits empty members).
      if (omitEmptyLists && output.Failed.length === 0) Reflect.deleteProperty(output, 'Failed');
      if (omitEmptyLists && output.Successful?.length === 0) Reflect.deleteProperty(output, 'Successful');
      return res;
    },
    { step: 'initialize', name: 'deleteFaults', priority: 'low' },
  );
  const stats = newStats();
  const health = new HealthState();
  const log = memoryLogger();
  return { d: new Deleter(client, stats, health, log), calls, stats, health, log };
}

describe('Deleter: DeleteMessageBatch of acked messages', () => {
  it('sends a full batch of 10 at once and the rest within the gather window, 10 entries per call at most', async () => {
    const { queue, received } = await receivedMessages(25);
    const { d, calls, stats } = deleter();
    for (const m of received.slice(0, 10)) d.delete(m);
    // No timer can have run yet (only microtasks): the full batch left without waiting for the gather window.
    await Promise.resolve();
    expect(calls.map((c) => c.receipts.length)).toEqual([10]);
    for (const m of received.slice(10)) d.delete(m);
    await waitFor(() => stats.deleted === 25, '25 deletes');
    expect(calls.map((c) => c.receipts.length)).toEqual([10, 10, 5]);
    // Every message once, each by its own receipt handle.
    expect(calls.flatMap((c) => c.receipts).sort()).toEqual(received.map((m) => m.receipt).sort());
    expect(calls.every((c) => c.queue === queue.url)).toBe(true);
    expect(await sqs.counts(queue.url)).toEqual({ visible: 0, invisible: 0 });
    expect(stats).toMatchObject({ deleteRetries: 0, deleteFailures: 0 });
  });

  it('gathers deletes that come within the window into one call, without a flush', async () => {
    const { queue, received } = await receivedMessages(3);
    const { d, calls, stats } = deleter();
    for (const m of received) d.delete(m);
    await waitFor(() => stats.deleted === 3, '3 deletes');
    expect(calls).toEqual([{ queue: queue.url, receipts: received.map((m) => m.receipt) }]);
    expect(await sqs.counts(queue.url)).toEqual({ visible: 0, invisible: 0 });
  });

  it('flush sends what is queued now, more than 10 split into calls of 10; each queue gets its own calls', async () => {
    const a = await receivedMessages(12);
    const b = await receivedMessages(2);
    const { d, calls, stats } = deleter();
    // Interleaved, and fewer than 10 per queue at a time until the end: no call leaves before the flush.
    for (let i = 0; i < 9; i++) d.delete(a.received[i] as Received);
    for (const m of b.received) d.delete(m);
    await d.flush();
    expect(stats.deleted).toBe(11);
    for (const m of a.received.slice(9)) d.delete(m);
    await d.idle();
    expect(stats.deleted).toBe(14);
    expect(calls.map((c) => [c.queue, c.receipts.length])).toEqual([
      [a.queue.url, 9],
      [b.queue.url, 2],
      [a.queue.url, 3],
    ]);
    expect(await sqs.counts(a.queue.url)).toEqual({ visible: 0, invisible: 0 });
    expect(await sqs.counts(b.queue.url)).toEqual({ visible: 0, invisible: 0 });
    // 12 at once: the tenth sends a full call, the other two wait for the gather window.
    const c = await receivedMessages(12);
    const late = deleter();
    for (const m of c.received) late.d.delete(m);
    await late.d.idle();
    expect(late.calls.map((x) => x.receipts.length)).toEqual([10, 2]);
    expect(late.stats.deleted).toBe(12);
  });

  it('retries only the entries SQS reported as failed, then counts them deleted', async () => {
    const { queue, received } = await receivedMessages(4);
    const { d, calls, stats, log, health } = deleter((input, call) =>
      call === 1
        ? ([
            { Id: input.Entries?.[1]?.Id, Code: 'InternalError', SenderFault: false, Message: 'injected' },
            // Code is required by the API model; an answer without one is still read
            { Id: input.Entries?.[3]?.Id, SenderFault: false, Message: 'no code' },
          ] as BatchResultErrorEntry[])
        : undefined,
    );
    for (const m of received) d.delete(m);
    await d.idle();
    expect(calls.map((c) => c.receipts)).toEqual([
      received.map((m) => m.receipt),
      [received[1]?.receipt, received[3]?.receipt],
    ]);
    expect(stats).toMatchObject({ deleted: 4, deleteRetries: 2, deleteFailures: 0 });
    expect(log.lines).toEqual([
      {
        level: 'info',
        obj: {
          queue: queue.name,
          count: 2,
          attempt: 1,
          reason: ['InternalError: injected', 'error: no code'],
        },
        msg: 'delete failed; retrying',
      },
    ]);
    expect(health.lastError).toBeUndefined();
    expect(await sqs.counts(queue.url)).toEqual({ visible: 0, invisible: 0 });
  });

  it('ignores a failed entry that names no entry of the call', async () => {
    const { queue, received } = await receivedMessages(2);
    const { d, calls, stats } = deleter((_, call) =>
      call === 1 ? [{ Id: '99', Code: 'InternalError', SenderFault: false }] : undefined,
    );
    for (const m of received) d.delete(m);
    await d.idle();
    expect(calls).toHaveLength(1);
    expect(stats).toMatchObject({ deleted: 2, deleteRetries: 0, deleteFailures: 0 });
    expect(await sqs.counts(queue.url)).toEqual({ visible: 0, invisible: 0 });
  });

  it('a call that keeps failing is tried 3 times, then given up: counted, logged, and in health', async () => {
    const { queue, received } = await receivedMessages(2);
    const { d, calls, stats, log, health } = deleter(() => 'throw');
    for (const m of received) d.delete(m);
    // idle() waits for the retries and the give-up.
    await d.idle();
    expect(calls.map((c) => c.receipts)).toEqual(Array(3).fill(received.map((m) => m.receipt)));
    expect(stats).toMatchObject({ deleted: 0, deleteRetries: 4, deleteFailures: 2 });
    expect(log.lines.map((l) => [l.level, l.msg, (l.obj as { attempt?: number }).attempt])).toEqual([
      ['info', 'delete failed; retrying', 1],
      ['info', 'delete failed; retrying', 2],
      ['warn', 'delete failed; SQS will redeliver those messages', undefined],
    ]);
    const warned = log.lines.at(-1)?.obj as { queue: string; count: number; reason: unknown };
    expect(warned).toMatchObject({ queue: queue.name, count: 2 });
    expect(String(warned.reason)).toMatch(new RegExp(`DeleteMessageBatch on ${queue.name}.*injected outage`));
    expect(health.lastError).toMatch(new RegExp(`^DeleteMessageBatch on ${queue.name}: .*injected outage`));
    // Not deleted: both are still at SQS (invisible until their visibility timeout ends, then redelivered).
    expect(await sqs.counts(queue.url)).toEqual({ visible: 0, invisible: 2 });
  });

  it('a call that fails once and then succeeds deletes the whole call', async () => {
    const { queue, received } = await receivedMessages(3);
    const { d, calls, stats, health } = deleter((_, call) => (call === 1 ? 'throw' : undefined));
    for (const m of received) d.delete(m);
    await d.idle();
    expect(calls.map((c) => c.receipts)).toEqual(Array(2).fill(received.map((m) => m.receipt)));
    expect(stats).toMatchObject({ deleted: 3, deleteRetries: 3, deleteFailures: 0 });
    expect(health.lastError).toBeUndefined();
    expect(await sqs.counts(queue.url)).toEqual({ visible: 0, invisible: 0 });
  });

  it('reads answers that leave out an empty Successful or Failed list', async () => {
    const { queue, received } = await receivedMessages(3);
    const { d, calls, stats, log } = deleter(
      (input, call) =>
        call === 1
          ? (input.Entries ?? []).map((e) => ({ Id: e.Id, Code: 'InternalError', SenderFault: false }))
          : undefined,
      true,
    );
    for (const m of received) d.delete(m);
    await d.idle();
    // The first answer has only Failed (all three), the second only Successful: one retry, all deleted.
    expect(calls).toHaveLength(2);
    expect(stats).toMatchObject({ deleted: 3, deleteRetries: 3, deleteFailures: 0 });
    expect(log.lines.map((l) => (l.obj as { reason: unknown }).reason)).toEqual([
      ['InternalError:', 'InternalError:', 'InternalError:'],
    ]);
    expect(await sqs.counts(queue.url)).toEqual({ visible: 0, invisible: 0 });
  });
});
