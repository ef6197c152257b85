import {
  type DeleteMessageBatchCommandInput,
  type DeleteMessageBatchCommandOutput,
  ReceiveMessageCommand,
} from '@aws-sdk/client-sqs';
import { createTestContext, memoryLogger, outcomes } from '@connector/testing';
import { describe, expect, it } from 'vitest';
import { sqsSource } from '../src/index.js';
import { connect, sqsSuite, startGateway, waitFor } from './helpers.js';

const { sqs, cleanup, consume } = sqsSuite();

async function gateway(queue: string, handler?: Parameters<typeof startGateway>[0]) {
  const g = await startGateway(handler ?? { functions: [{ name: 'fn', annotations: { topic: queue } }] });
  cleanup.add(() => g.close());
  return g;
}
const bodies = (g: Awaited<ReturnType<typeof gateway>>) => g.invocations('fn').map((r) => r.body.toString());

describe('SQS source against fauxqs', () => {
  it('delivers every message and deletes each one after delivery', async () => {
    const url = await sqs.createQueue('orders');
    const g = await gateway('orders');
    const sent = Array.from({ length: 50 }, (_, i) => `order-${i}`);
    await sqs.send(url, sent, (i) => ({
      MessageAttributes: { priority: { DataType: 'Number', StringValue: String(i % 3) } },
    }));
    const { source } = await consume(g, {
      queues: ['orders'],
    });
    await waitFor(() => g.invocations('fn').length >= 50, '50 invocations');
    await waitFor(() => source.stats().deleted === 50, '50 deletes');
    expect(new Set(bodies(g))).toEqual(new Set(sent));
    expect(g.invocations('fn')).toHaveLength(50);
    expect(await sqs.counts(url)).toEqual({ visible: 0, invisible: 0 });
    const h = g.invocations('fn')[0]?.headers ?? {};
    expect(h['x-topic']).toBe('orders');
    expect(h['x-sqs-message-id']).toBeTruthy();
    expect(h['x-sqs-approximatereceivecount']).toBe('1');
    expect(h['x-sqs-senttimestamp']).toMatch(/^\d+$/);
    expect(h['x-sqs-priority']).toMatch(/^[012]$/);
  });

  it("ages a message from SQS's SentTimestamp: past a function's max-age it is dead-lettered, not invoked", async () => {
    const url = await sqs.createQueue('aged');
    const g = await gateway('aged', {
      functions: [
        { name: 'fn', annotations: { topic: 'aged', 'connector.dev/max-age': '1ms' } },
        { name: 'fresh', annotations: { topic: 'aged' } },
      ],
    });
    await sqs.send(url, ['old news']);
    const { source } = await consume(g, {
      queues: ['aged'],
    });
    await waitFor(() => source.stats().deleted === 1, 'the expired message settled (deleted)');
    // Without the broker's timestamp the age would count from the first attempt (0 ms) and `fn` would be invoked.
    expect(g.invocations('fn')).toHaveLength(0);
    expect(g.invocations('fresh')).toHaveLength(1);
  });

  it('leaves a failing message to SQS, which redelivers it and then moves it to the DLQ', async () => {
    const dlq = await sqs.createQueue('payments-dlq');
    const dlqArn = `arn:aws:sqs:us-east-1:000000000000:payments-dlq`;
    const url = await sqs.createQueue('payments', {
      VisibilityTimeout: '1',
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: '2' }),
    });
    const g = await gateway('payments', {
      functions: [{ name: 'fn', annotations: { topic: 'payments' }, handler: () => ({ status: 500 }) }],
    });
    await sqs.send(url, ['poison']);
    const { source } = await consume(
      g,
      { queues: [url] },
      { retry: { maxRetries: 0 }, onFailure: 'redeliver' },
    );
    await waitFor(async () => (await sqs.counts(dlq)).visible === 1, 'the message in the DLQ');
    expect(g.invocations('fn').map((r) => r.headers['x-sqs-approximatereceivecount'])).toEqual(['1', '2']);
    expect(source.stats().deleted).toBe(0);
    expect(await sqs.counts(url)).toEqual({ visible: 0, invisible: 0 });
  });

  it('with on_failure=dead-letter the engine dead-letters and the message is deleted', async () => {
    const url = await sqs.createQueue('refunds', { VisibilityTimeout: '1' });
    const g = await gateway('refunds', {
      functions: [{ name: 'fn', annotations: { topic: 'refunds' }, handler: () => ({ status: 400 }) }],
    });
    const letters: string[] = [];
    await sqs.send(url, ['bad']);
    const { source } = await consume(
      g,
      { queues: ['refunds'] },
      { onFailure: 'dead-letter', deadLetter: (l) => void letters.push(l.function) },
    );
    await waitFor(() => source.stats().deleted === 1, 'delete after dead-lettering');
    expect(letters).toEqual(['fn.openfaas-fn']);
    expect(g.invocations('fn')).toHaveLength(1);
  });

  it('keeps a long invocation invisible with heartbeats: no duplicate delivery', async () => {
    const url = await sqs.createQueue('reports', { VisibilityTimeout: '2' });
    const g = await gateway('reports');
    g.fault('fn', { delay: 5000, times: 1 });
    await sqs.send(url, ['slow-report']);
    const { source } = await consume(g, {
      queues: ['reports'],
    });
    await waitFor(() => source.stats().deleted === 1, 'the delete after the slow invocation');
    expect(g.invocations('fn')).toHaveLength(1);
    expect(source.stats().extended).toBeGreaterThanOrEqual(2);
  });

  it('slow messages of one receive share their heartbeat: one ChangeMessageVisibilityBatch a beat, no duplicate', async () => {
    const url = await sqs.createQueue('slow-batch', { VisibilityTimeout: '2' });
    const g = await gateway('slow-batch');
    g.fault('fn', { delay: 3500, times: 3 });
    await sqs.send(url, ['s-0', 's-1', 's-2']);
    const counted = sqs.countingClient();
    const { source } = await consume(g, { queues: ['slow-batch'], client: counted.client });
    await waitFor(() => source.stats().deleted === 3, 'the deletes after the slow invocations');
    expect(source.stats().received).toBe(3);
    expect(g.invocations('fn')).toHaveLength(3);
    const calls = counted.count('ChangeMessageVisibilityBatch');
    expect(calls).toBeGreaterThanOrEqual(2); // a beat every second during 3.5 s
    expect(source.stats().extended).toBeGreaterThanOrEqual(3 * 2);
    // Sent before the connector started, all three come in its first receive (fauxqs hands over up to 10): one
    // heartbeat, so each call carries several entries.
    expect(source.stats().extended).toBeGreaterThan(calls);
    expect(counted.count('ChangeMessageVisibility')).toBe(0);
    expect(counted.errors).toEqual([]);
  });

  it('asks for the system attributes under both names: an emulator that knows only AttributeNames keeps FIFO order', async () => {
    const url = await sqs.createQueue('legacy.fifo', {
      FifoQueue: 'true',
      ContentBasedDeduplication: 'true',
    });
    const g = await gateway('legacy.fifo');
    await sqs.send(url, ['l-0', 'l-1', 'l-2'], () => ({ MessageGroupId: 'g' }));
    // fauxqs reads either name; without MessageSystemAttributeNames it plays an emulator that knows only the old one.
    const counted = sqs.countingClient();
    counted.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'ReceiveMessageCommand')
          Reflect.deleteProperty(args.input as object, 'MessageSystemAttributeNames');
        return next(args);
      },
      { step: 'initialize', name: 'legacyEmulator', priority: 'low' },
    );
    await consume(g, { queues: ['legacy.fifo'], client: counted.client });
    await waitFor(() => g.invocations('fn').length === 3, '3 invocations');
    expect(bodies(g)).toEqual(['l-0', 'l-1', 'l-2']);
    for (const call of g.invocations('fn')) {
      expect(call.headers['x-sqs-messagegroupid']).toBe('g'); // the group is known: delivered in order
      expect(call.headers['x-sqs-senttimestamp']).toMatch(/^\d+$/);
    }
  });

  it('FIFO messages without a MessageGroupId (no system attributes at all): the queue is one group, in order', async () => {
    const url = await sqs.createQueue('bare.fifo', { FifoQueue: 'true', ContentBasedDeduplication: 'true' });
    const g = await gateway('bare.fifo');
    g.fault('fn', { delay: 300, times: 3 });
    // Two groups; the server below sends no attributes, so the source cannot tell them apart.
    await sqs.send(url, ['a-0', 'b-0', 'a-1'], (i) => ({ MessageGroupId: i === 1 ? 'b' : 'a' }));
    const counted = sqs.countingClient();
    counted.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'ReceiveMessageCommand') {
          Reflect.deleteProperty(args.input as object, 'MessageSystemAttributeNames');
          Reflect.deleteProperty(args.input as object, 'AttributeNames');
        }
        return next(args);
      },
      { step: 'initialize', name: 'noAttributes', priority: 'low' },
    );
    const logger = memoryLogger();
    await consume(g, { queues: ['bare.fifo'], client: counted.client }, { logger });
    await waitFor(() => g.invocations('fn').length === 3, '3 invocations');
    const calls = g.invocations('fn');
    expect(bodies(g)).toEqual(['a-0', 'b-0', 'a-1']);
    // One at a time: each call starts after the previous one's 300 ms.
    for (let i = 1; i < calls.length; i++)
      expect((calls[i]?.at ?? 0) - (calls[i - 1]?.at ?? 0)).toBeGreaterThanOrEqual(280);
    const warned = logger.lines.filter((l) => l.level === 'warn').map((l) => l.msg);
    expect(warned).toContain(
      'FIFO message without MessageGroupId (no system attributes received): the queue is delivered as one group',
    );
  });

  it('delivers FIFO groups in order, groups concurrently', async () => {
    const url = await sqs.createQueue('events.fifo', {
      FifoQueue: 'true',
      ContentBasedDeduplication: 'true',
    });
    const g = await gateway('events.fifo');
    const sent: string[] = [];
    for (let i = 0; i < 10; i++) for (const grp of ['a', 'b', 'c']) sent.push(`${grp}-${i}`);
    await sqs.send(url, sent, (i) => ({ MessageGroupId: (sent[i] as string).slice(0, 1) }));
    await consume(g, {
      queues: ['events.fifo'],
    });
    await waitFor(() => g.invocations('fn').length === 30, '30 invocations');
    for (const grp of ['a', 'b', 'c']) {
      expect(bodies(g).filter((b) => b.startsWith(grp))).toEqual(
        Array.from({ length: 10 }, (_, i) => `${grp}-${i}`),
      );
    }
  });

  it('two connectors on one queue deliver every message once', async () => {
    const url = await sqs.createQueue('shared', { VisibilityTimeout: '30' });
    const g = await gateway('shared');
    const sent = Array.from({ length: 60 }, (_, i) => `m-${i}`);
    const a = await consume(g, { queues: ['shared'], maxMessages: 5 });
    const b = await consume(g, { queues: ['shared'], maxMessages: 5 });
    await sqs.send(url, sent);
    await waitFor(() => a.source.stats().deleted + b.source.stats().deleted === 60, '60 deletes');
    expect(g.invocations('fn')).toHaveLength(60);
    expect(new Set(bodies(g))).toEqual(new Set(sent));
    expect(a.source.stats().received).toBeGreaterThan(0);
    expect(b.source.stats().received).toBeGreaterThan(0);
  });

  it('a connector killed mid-stream loses nothing: unsettled messages come back', async () => {
    const url = await sqs.createQueue('jobs', { VisibilityTimeout: '2' });
    const g = await gateway('jobs');
    g.fault('fn', { hang: true });
    const sent = ['j-0', 'j-1', 'j-2', 'j-3', 'j-4'];
    await sqs.send(url, sent);
    const first = await connect(g, {
      queues: ['jobs'],
      waitTime: 1,
      releaseOnStop: false,
      clientConfig: sqs.clientConfig,
    });
    await waitFor(() => g.pending() >= 1, 'a held invocation');
    await first.connector.kill();
    g.fault('fn', null);
    const before = g.invocations('fn').length;
    const second = await consume(g, { queues: ['jobs'] });
    await waitFor(() => second.source.stats().deleted === 5, 'all 5 after the visibility timeout');
    expect(new Set(bodies(g).slice(before))).toEqual(new Set(sent));
    expect(await sqs.counts(url)).toEqual({ visible: 0, invisible: 0 });
  });

  it('stop releases received-but-unsettled messages at once', async () => {
    const url = await sqs.createQueue('release', { VisibilityTimeout: '300' });
    const g = await gateway('release');
    g.fault('fn', { hang: true });
    await sqs.send(url, ['r-0', 'r-1']);
    const { connector, source } = await connect(
      g,
      { queues: ['release'], waitTime: 1, clientConfig: sqs.clientConfig },
      { drainTimeout: 100 },
    );
    await waitFor(() => source.stats().received === 2, 'both received');
    await connector.stop();
    expect(source.stats().released).toBe(2);
    // Visible again at once (their visibility timeout is 300 s): another consumer receives them now.
    const again = await sqs.client.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    expect((again.Messages ?? []).map((m) => m.Body).sort()).toEqual(['r-0', 'r-1']);
  });

  it('an idle connector long-polls: about one ReceiveMessage per wait_time per poller', async () => {
    await sqs.createQueue('idle');
    const g = await gateway('idle');
    const counted = sqs.countingClient();
    const { source } = await consume(g, {
      queues: ['idle'],
      pollers: 2,
      client: counted.client,
    });
    await waitFor(() => counted.count('ReceiveMessage') >= 2, 'both pollers polling');
    const start = counted.count('ReceiveMessage');
    const t0 = Date.now();
    await waitFor(() => Date.now() - t0 >= 2000, 'an idle window of 2 wait_times', 10_000);
    const calls = counted.count('ReceiveMessage') - start;
    // 2 pollers x 2 s / 1 s = 4 long polls; a busy loop would make thousands. Bound: 2x that.
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(calls).toBeLessThanOrEqual(2 * 2 * 2);
    expect(counted.errors).toEqual([]);
    expect(source.stats().received).toBe(0);
    // The source's own counter agrees with what went over the wire.
    expect(source.stats().receiveCalls).toBe(counted.count('ReceiveMessage'));
  });

  it('FIFO: a failed message is redelivered before the rest of its group, which follows in order', async () => {
    const url = await sqs.createQueue('ordered.fifo', {
      FifoQueue: 'true',
      ContentBasedDeduplication: 'true',
      VisibilityTimeout: '1',
    });
    let failed = false;
    const g = await gateway('ordered.fifo', {
      functions: [
        {
          name: 'fn',
          annotations: { topic: 'ordered.fifo' },
          handler: (req) => {
            const body = req.body.toString();
            if (body === 'a-1' && !failed) {
              failed = true;
              return { status: 500 };
            }
            return { status: 200, body };
          },
        },
      ],
    });
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) for (const grp of ['a', 'b']) sent.push(`${grp}-${i}`);
    await sqs.send(url, sent, (i) => ({ MessageGroupId: (sent[i] as string).slice(0, 1) }));
    const { source } = await consume(
      g,
      { queues: ['ordered.fifo'] },
      { retry: { maxRetries: 0 }, onFailure: 'redeliver' },
    );
    await waitFor(() => source.stats().deleted === 10, '10 deletes');
    const ok = (grp: string) =>
      g
        .invocations('fn')
        .filter((r) => r.status === 200)
        .map((r) => r.body.toString())
        .filter((b) => b.startsWith(grp));
    expect(ok('a')).toEqual(['a-0', 'a-1', 'a-2', 'a-3', 'a-4']);
    expect(ok('b')).toEqual(['b-0', 'b-1', 'b-2', 'b-3', 'b-4']);
    // a-1 was invoked twice (failed, then redelivered); nothing behind it ran before its redelivery. (fauxqs hands
    // out one message per group per receive; test/fifo-batch.test.ts covers a batch with several of one group.)
    expect(bodies(g).filter((b) => b === 'a-1')).toHaveLength(2);
    expect(g.invocations('fn')).toHaveLength(11);
    expect(await sqs.counts(url)).toEqual({ visible: 0, invisible: 0 });
  });

  it.each(['key', 'none'] as const)(
    "FIFO with ordering '%s': the ordering key it sets; a failed message comes back, nothing lost",
    async (ordering) => {
      const queue = `loose-${ordering}.fifo`;
      const url = await sqs.createQueue(queue, {
        FifoQueue: 'true',
        ContentBasedDeduplication: 'true',
        VisibilityTimeout: '1',
      });
      const sent: string[] = [];
      for (let i = 0; i < 3; i++) for (const grp of ['a', 'b']) sent.push(`${grp}-${i}`);
      await sqs.send(url, sent, (i) => ({ MessageGroupId: (sent[i] as string).slice(0, 1) }));
      let failed = false;
      const test = createTestContext({
        topics: [queue],
        answer: (m) => {
          if (new TextDecoder().decode(m.body) !== 'a-1' || failed) return outcomes.delivered();
          failed = true;
          return outcomes.failed(); // redeliver mode: not acked, left to SQS
        },
      });
      const source = sqsSource({ queues: [queue], waitTime: 1, ordering, clientConfig: sqs.clientConfig });
      await source.start(test);
      cleanup.add(() => source.stop());
      await waitFor(() => source.stats().deleted === 6, '6 deletes (a-1 after its visibility timeout)');
      expect(test.nacked).toEqual(['a-1']);
      expect(test.bodies().filter((b) => b === 'a-1')).toHaveLength(2);
      expect([...test.acked].sort()).toEqual([...sent].sort());
      expect(test.messages.map((m) => m.orderingKey)).toEqual(
        test.bodies().map((b) => (ordering === 'key' ? `${url}#${b.slice(0, 1)}` : undefined)),
      );
      expect(source.stats().released).toBe(0);
      expect(await sqs.counts(url)).toEqual({ visible: 0, invisible: 0 });
    },
  );

  it('retries a delete that partly failed (DeleteMessageBatch Failed entries) and deletes everything', async () => {
    const url = await sqs.createQueue('partial');
    const g = await gateway('partial');
    const counted = sqs.countingClient();
    // SQS can answer a DeleteMessageBatch with some entries in Failed; fauxqs never does, so the first call's first
    // entry is held back from the server here and reported as failed, as SQS would.
    let injected = 0;
    counted.client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as DeleteMessageBatchCommandInput;
        if (context.commandName !== 'DeleteMessageBatchCommand' || injected > 0) return next(args);
        injected++;
        const [first, ...rest] = input.Entries ?? [];
        const res =
          rest.length > 0
            ? await next({ ...args, input: { ...input, Entries: rest } })
            : { output: { Successful: [], $metadata: {} }, response: {} };
        const output = res.output as DeleteMessageBatchCommandOutput;
        output.Failed = [
          ...(output.Failed ?? []),
          { Id: first?.Id, Code: 'InternalError', SenderFault: false, Message: 'injected' },
        ];
        return res;
      },
      { step: 'initialize', name: 'failOneDelete', priority: 'low' },
    );
    const sent = Array.from({ length: 12 }, (_, i) => `p-${i}`);
    await sqs.send(url, sent);
    const { source } = await consume(g, {
      queues: ['partial'],
      client: counted.client,
    });
    await waitFor(() => source.stats().deleted === 12, '12 deletes');
    expect(injected).toBe(1);
    expect(source.stats()).toMatchObject({ deleteRetries: 1, deleteFailures: 0, received: 12 });
    expect(g.invocations('fn')).toHaveLength(12);
    expect(await sqs.counts(url)).toEqual({ visible: 0, invisible: 0 });
  });

  it("hands attributes over raw: core's header policy encodes what a header cannot carry", async () => {
    const url = await sqs.createQueue('labels');
    const g = await gateway('labels');
    await sqs.send(url, ['x'], () => ({
      MessageAttributes: {
        plain: { DataType: 'String', StringValue: 'as is' },
        snow: { DataType: 'String', StringValue: 'snow ☃' },
        lines: { DataType: 'String', StringValue: 'a\nb' },
        blob: { DataType: 'Binary', BinaryValue: new Uint8Array([1, 2, 255]) },
      },
    }));
    const { source } = await consume(g, {
      queues: ['labels'],
    });
    await waitFor(() => source.stats().deleted === 1, 'the delete');
    const h = g.invocations('fn')[0]?.headers ?? {};
    expect(h).toMatchObject({
      'x-sqs-plain': 'as is',
      'x-sqs-snow': 'snow%20%E2%98%83',
      'x-sqs-lines': 'a%0Ab',
      'x-sqs-blob': '%01%02%FF', // Binary: its bytes, percent-encoded by core
    });
    expect(g.invocations('fn')).toHaveLength(1);
  });

  it('stop waits for a long poll in progress and releases what it brought', async () => {
    const url = await sqs.createQueue('late');
    const g = await gateway('late');
    const counted = sqs.countingClient();
    const { connector, source } = await connect(g, {
      queues: ['late'],
      waitTime: 20,
      client: counted.client,
    });
    await waitFor(() => counted.count('ReceiveMessage') === 1, 'a long poll');
    const stopped = connector.stop();
    await sqs.send(url, ['late-1']);
    await stopped;
    expect(counted.errors).toEqual([]);
    expect(source.stats()).toMatchObject({ received: 1, released: 1, deleted: 0 });
    expect(g.invocations('fn')).toHaveLength(0);
    expect(await sqs.counts(url)).toEqual({ visible: 1, invisible: 0 });
  });

  it('abortPollOnStop aborts the long poll in progress', async () => {
    await sqs.createQueue('abort');
    const g = await gateway('abort');
    const counted = sqs.countingClient();
    const { connector, source } = await connect(g, {
      queues: ['abort'],
      waitTime: 20,
      abortPollOnStop: true,
      client: counted.client,
    });
    await waitFor(() => counted.count('ReceiveMessage') === 1, 'a long poll');
    await connector.stop();
    expect(counted.errors).toEqual([{ command: 'ReceiveMessageCommand', name: 'AbortError' }]);
    expect(source.stats()).toMatchObject({ receiveCalls: 1, received: 0 });
  });

  it('does not poll while no function subscribes (gateway down at start): nothing is deleted as unrouted', async () => {
    const url = await sqs.createQueue('early');
    const g = await gateway('early');
    g.fault('system', { status: 500 });
    await sqs.send(url, ['e-0', 'e-1', 'e-2']);
    const counted = sqs.countingClient();
    const { source, controller } = await consume(g, {
      queues: ['early'],
      client: counted.client,
    });
    // Started with an empty topic map (the first sync failed): the queue is resolved, but never polled.
    expect(controller.synced()).toBe(false);
    expect(g.requests.some((r) => r.path.startsWith('/system/'))).toBe(true);
    expect(counted.count('GetQueueUrl')).toBe(1);
    expect(counted.count('ReceiveMessage')).toBe(0);
    expect(source.health?.()?.detail).toMatchObject({ polling: false });
    g.fault('system', null);
    await controller.refresh();
    await waitFor(() => source.stats().deleted === 3, '3 deletes once the function is known');
    expect(bodies(g).sort()).toEqual(['e-0', 'e-1', 'e-2']);
    expect(await sqs.counts(url)).toEqual({ visible: 0, invisible: 0 });
  });

  it('runs without heartbeats when sqs:GetQueueAttributes is denied', async () => {
    const url = await sqs.createQueue('denied');
    const g = await gateway('denied');
    const counted = sqs.countingClient();
    counted.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'GetQueueAttributesCommand') {
          throw Object.assign(new Error('not authorized'), {
            name: 'AccessDenied',
            $metadata: { httpStatusCode: 403 },
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'denyAttributes', priority: 'low' },
    );
    await sqs.send(url, ['d-0']);
    // backlogInterval 0: the backlog sampler (GetQueueAttributes too) would add its own calls to the count.
    const { source } = await consume(
      g,
      { queues: ['denied'], client: counted.client },
      { backlogInterval: 0 },
    );
    await waitFor(() => source.stats().deleted === 1, 'the delete');
    expect(counted.count('GetQueueAttributes')).toBe(1);
    expect(source.stats().extended).toBe(0);
    expect(bodies(g)).toEqual(['d-0']);
  });
});
