import { describe, expect, it } from 'vitest';
import { sqsSuite, startGateway, waitFor } from './helpers.js';

const { sqs, cleanup, consume } = sqsSuite();

interface Item {
  id: string;
  body?: string;
}

describe('SQS with batch delivery (connector.dev/batch-size)', () => {
  it('partial failure: SQS deletes the succeeded items, redelivers exactly the failed one', async () => {
    const url = await sqs.createQueue('batch-partial', { VisibilityTimeout: '1' });
    const bodies = Array.from({ length: 10 }, (_, i) => `m-${i}`);
    const seen = new Map<string, number>();
    const requests: string[][] = [];
    const g = await startGateway({
      functions: [
        {
          name: 'fn',
          annotations: {
            topic: 'batch-partial',
            'connector.dev/batch-size': '10',
            'connector.dev/batch-window': '200ms',
            'com.openfaas.retry.attempts': '1', // no retry in the connector: the broker redelivers
          },
          handler: (req) => {
            const items = (JSON.parse(req.body.toString()) as { items: Item[] }).items;
            requests.push(items.map((i) => i.body ?? ''));
            const failed = items
              .filter((i) => {
                const n = (seen.get(i.body ?? '') ?? 0) + 1;
                seen.set(i.body ?? '', n);
                return i.body === 'm-3' && n === 1;
              })
              .map((i) => ({ itemIdentifier: i.id }));
            return { status: 200, body: JSON.stringify({ batchItemFailures: failed }) };
          },
        },
      ],
    });
    cleanup.add(() => g.close());
    await sqs.send(url, bodies);
    await consume(g, { queues: ['batch-partial'], maxMessages: 10 }, { onFailure: 'redeliver' });
    await waitFor(() => (seen.get('m-3') ?? 0) === 2 && seen.size === 10, 'm-3 redelivered');
    await waitFor(async () => {
      const c = await sqs.counts(url);
      return c.visible === 0 && c.invisible === 0;
    }, 'queue empty');
    // Every other message was processed once (deleted after its own success); only m-3 came back.
    expect([...seen].filter(([, n]) => n !== 1)).toEqual([['m-3', 2]]);
    expect(requests.length).toBeLessThan(10); // batched, not one request per message
    expect(requests.at(-1)).toEqual(['m-3']);
  });
});
