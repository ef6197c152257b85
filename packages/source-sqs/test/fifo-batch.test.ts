import { createHash } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cleanups, type FunctionHandler } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, credentials, startGateway, waitFor } from './helpers.js';

// Real SQS returns several messages of one FIFO group in one ReceiveMessage (fauxqs 1.9 returns one per group per
// call, so it cannot show what happens behind a failed message of a batch). This endpoint speaks the SQS JSON
// protocol for the calls the source makes and hands out one such batch, recording what the source does with it.
interface Held {
  id: string;
  body: string;
  group: string;
}
async function startBatchSqs(batch: Held[]) {
  const calls: { op: string; input: Record<string, unknown> }[] = [];
  const waiting = new Set<ServerResponse>();
  let handedOut = false;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const op = String(req.headers['x-amz-target'] ?? '').replace('AmazonSQS.', '');
      const input = JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown>;
      calls.push({ op, input });
      const reply = (body: unknown) => {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end(JSON.stringify(body));
      };
      const entries = (input['Entries'] ?? []) as { Id: string }[];
      switch (op) {
        case 'GetQueueUrl':
          return reply({ QueueUrl: `${url}/000000000000/${String(input['QueueName'])}` });
        case 'GetQueueAttributes':
          return reply({ Attributes: { VisibilityTimeout: '30' } });
        case 'ReceiveMessage': {
          if (!handedOut) {
            handedOut = true;
            return reply({
              Messages: batch.map((m, i) => ({
                MessageId: m.id,
                ReceiptHandle: `rh-${m.id}`,
                Body: m.body,
                MD5OfBody: createHash('md5').update(m.body).digest('hex'),
                Attributes: {
                  MessageGroupId: m.group,
                  SequenceNumber: String(i + 1),
                  ApproximateReceiveCount: '1',
                },
              })),
            });
          }
          // Nothing more: an empty answer after the long poll's wait.
          waiting.add(res);
          const t = setTimeout(
            () => {
              waiting.delete(res);
              reply({});
            },
            Number(input['WaitTimeSeconds'] ?? 0) * 1000,
          );
          res.on('close', () => clearTimeout(t));
          return;
        }
        case 'DeleteMessageBatch':
        case 'ChangeMessageVisibilityBatch':
          return reply({ Successful: entries.map((e) => ({ Id: e.Id })), Failed: [] });
        case 'ChangeMessageVisibility':
          return reply({});
        default:
          res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
          return res.end(JSON.stringify({ __type: 'InvalidAction', message: op }));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const handles = (op: string, filter: (e: Record<string, unknown>) => boolean = () => true) =>
    calls
      .filter((c) => c.op === op)
      .flatMap((c) =>
        c.input['Entries']
          ? (c.input['Entries'] as Record<string, unknown>[])
          : [c.input as Record<string, unknown>],
      )
      .filter(filter)
      .map((e) => String(e['ReceiptHandle']).replace('rh-', ''));
  return {
    url,
    deleted: () => handles('DeleteMessageBatch'),
    released: () =>
      handles('ChangeMessageVisibilityBatch', (e) => e['VisibilityTimeout'] === 0).concat(
        handles('ChangeMessageVisibility', (e) => e['VisibilityTimeout'] === 0),
      ),
    close: async () => {
      for (const res of waiting) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const cleanup = cleanups();
afterEach(() => cleanup.run());

/** Messages `<group>-0` .. `<group>-<n-1>` of one group, as one receive hands them out. */
const group = (name: string, n: number): Held[] =>
  Array.from({ length: n }, (_, i) => ({ id: `${name}-${i}`, body: `${name}-${i}`, group: name }));

/** `batch` handed out by the endpoint, a gateway with function `fn` (topic `batch.fifo`) doing `handler`, and a
 * connector consuming `batch.fifo` (no retries, redeliver mode); all closed after the test. */
async function consumeBatch(batch: Held[], handler: FunctionHandler, ordering?: 'key' | 'none') {
  const sqs = await startBatchSqs(batch);
  cleanup.add(() => sqs.close());
  const g = await startGateway({
    functions: [{ name: 'fn', annotations: { topic: 'batch.fifo' }, handler }],
  });
  cleanup.add(() => g.close());
  const { connector, source } = await connect(
    g,
    {
      queues: ['batch.fifo'],
      waitTime: 1,
      endpoint: sqs.url,
      region: 'us-east-1',
      clientConfig: { credentials },
      ...(ordering === undefined ? {} : { ordering }),
    },
    { retry: { maxRetries: 0 }, onFailure: 'redeliver' },
  );
  cleanup.add(() => connector.stop());
  const invoked = () => g.invocations('fn').map((r) => r.body.toString());
  return { sqs, source, invoked };
}

/**
 * A function that holds each call until it has seen `several` calls in flight at once, then lets every call go;
 * `most()` is the most it saw at once. With `alone` (ms), a held call also goes after that long, so calls that come
 * one at a time still finish (each having waited for company that did not come).
 */
function gathering(several: number, alone?: number) {
  let now = 0;
  let most = 0;
  const held = new Set<() => void>();
  const release = () => {
    for (const go of [...held]) go();
  };
  const wait = () =>
    new Promise<void>((resolve) => {
      const go = () => {
        clearTimeout(timer);
        held.delete(go);
        resolve();
      };
      const timer = alone === undefined ? undefined : setTimeout(go, alone);
      held.add(go);
    });
  const handler: FunctionHandler = async (req) => {
    most = Math.max(most, ++now);
    if (most >= several) release();
    else await wait();
    now--;
    return { status: 200, body: req.body };
  };
  return { handler, most: () => most, release };
}

describe('FIFO batch with several messages of one group (SQS JSON protocol endpoint)', () => {
  it('after a failed message the rest of its group is released undelivered; other groups go on', async () => {
    const { sqs, source, invoked } = await consumeBatch([...group('a', 5), ...group('b', 3)], (req) => ({
      status: req.body.toString() === 'a-1' ? 500 : 200,
    }));
    // The endpoint records a call when its request arrives; the source counts it once the answer is back. Wait on
    // both: the assertions below read both.
    await waitFor(
      () =>
        sqs.deleted().length === 4 &&
        sqs.released().length === 3 &&
        source.stats().deleted === 4 &&
        source.stats().released === 3,
      'a-0 and the b group deleted, a-2..a-4 released (as sent, and as counted by the source)',
    );
    expect(invoked().filter((b) => b.startsWith('a'))).toEqual(['a-0', 'a-1']);
    expect(invoked().filter((b) => b.startsWith('b'))).toEqual(['b-0', 'b-1', 'b-2']);
    expect(sqs.deleted().sort()).toEqual(['a-0', 'b-0', 'b-1', 'b-2']);
    expect(sqs.released()).toEqual(['a-2', 'a-3', 'a-4']);
    expect(source.stats()).toMatchObject({ received: 8, deleted: 4, released: 3 });
    // a-1 is neither deleted nor released: SQS redelivers it after its visibility timeout, then a-2..a-4.
    expect(sqs.deleted()).not.toContain('a-1');
    expect(sqs.released()).not.toContain('a-1');
  });
});

describe("ordering: 'none' on a FIFO batch of one group (SQS JSON protocol endpoint)", () => {
  const ids = group('a', 10).map((m) => m.id);

  it("'none': the group's messages are invoked concurrently, every one delivered and deleted", async () => {
    const fn = gathering(3);
    const { sqs, source, invoked } = await consumeBatch(group('a', 10), fn.handler, 'none');
    cleanup.add(() => fn.release()); // runs before the connector's stop: a failing test leaves nothing held
    await waitFor(() => fn.most() >= 3, '3 calls of group a in flight at once', 10_000);
    await waitFor(
      () => sqs.deleted().length === 10 && source.stats().deleted === 10,
      'all 10 deleted (as sent, and as counted by the source)',
    );
    expect(invoked().sort()).toEqual(ids);
    expect(sqs.deleted().sort()).toEqual(ids);
    expect(sqs.released()).toEqual([]);
    expect(source.stats()).toMatchObject({ received: 10, deleted: 10, released: 0 });
    expect(source.health?.()?.detail).toMatchObject({ inFlight: 0 });
  });

  it("'key' (the default), same batch: one call of the group at a time, in order", async () => {
    // Each call waits up to 50 ms for company; under `none` the other nine would join it at once.
    const fn = gathering(3, 50);
    const { sqs, source, invoked } = await consumeBatch(group('a', 10), fn.handler);
    await waitFor(
      () => sqs.deleted().length === 10 && source.stats().deleted === 10,
      'all 10 deleted (as sent, and as counted by the source)',
    );
    expect(fn.most()).toBe(1);
    expect(invoked()).toEqual(ids);
    expect(sqs.deleted().sort()).toEqual(ids);
    expect(sqs.released()).toEqual([]);
  });

  it("'none', one message fails: the rest of its group is still delivered and deleted, the failed one kept at SQS", async () => {
    const { sqs, source, invoked } = await consumeBatch(
      group('a', 5),
      (req) => ({ status: req.body.toString() === 'a-2' ? 500 : 200 }),
      'none',
    );
    await waitFor(
      () =>
        invoked().length === 5 &&
        sqs.deleted().length === 4 &&
        source.stats().deleted === 4 &&
        source.health?.()?.detail?.['inFlight'] === 0,
      'a-0, a-1, a-3, a-4 deleted and a-2 settled (failed)',
    );
    expect(invoked().sort()).toEqual(['a-0', 'a-1', 'a-2', 'a-3', 'a-4']);
    expect(sqs.deleted().sort()).toEqual(['a-0', 'a-1', 'a-3', 'a-4']);
    // Nothing held back or released; a-2 is neither deleted nor released: it stays invisible at SQS and comes back
    // after its visibility timeout (test/source.test.ts shows that on fauxqs). Nothing lost.
    expect(sqs.released()).toEqual([]);
    expect(sqs.deleted()).not.toContain('a-2');
    expect(source.stats()).toMatchObject({ received: 5, deleted: 4, released: 0 });
  });
});
