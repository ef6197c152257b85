import { createHash } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cleanups } from '@connector/testing';
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

describe('FIFO batch with several messages of one group (SQS JSON protocol endpoint)', () => {
  it('after a failed message the rest of its group is released undelivered; other groups go on', async () => {
    const batch: Held[] = [
      ...['a-0', 'a-1', 'a-2', 'a-3', 'a-4'].map((id) => ({ id, body: id, group: 'a' })),
      ...['b-0', 'b-1', 'b-2'].map((id) => ({ id, body: id, group: 'b' })),
    ];
    const sqs = await startBatchSqs(batch);
    cleanup.add(() => sqs.close());
    const g = await startGateway({
      functions: [
        {
          name: 'fn',
          annotations: { topic: 'batch.fifo' },
          handler: (req) => ({ status: req.body.toString() === 'a-1' ? 500 : 200 }),
        },
      ],
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
      },
      { retry: { maxRetries: 0 }, onFailure: 'redeliver' },
    );
    cleanup.add(() => connector.stop());
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
    const invoked = g.invocations('fn').map((r) => r.body.toString());
    expect(invoked.filter((b) => b.startsWith('a'))).toEqual(['a-0', 'a-1']);
    expect(invoked.filter((b) => b.startsWith('b'))).toEqual(['b-0', 'b-1', 'b-2']);
    expect(sqs.deleted().sort()).toEqual(['a-0', 'b-0', 'b-1', 'b-2']);
    expect(sqs.released()).toEqual(['a-2', 'a-3', 'a-4']);
    expect(source.stats()).toMatchObject({ received: 8, deleted: 4, released: 3 });
    // a-1 is neither deleted nor released: SQS redelivers it after its visibility timeout, then a-2..a-4.
    expect(sqs.deleted()).not.toContain('a-1');
    expect(sqs.released()).not.toContain('a-1');
  });
});
