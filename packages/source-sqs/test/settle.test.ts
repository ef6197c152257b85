import type { DeliveryOutcome, SourceMessage } from '@connector/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqsSource } from '../src/index.js';
import { startSqs, testContext, waitFor } from './helpers.js';

let sqs: Awaited<ReturnType<typeof startSqs>>;
beforeAll(async () => {
  sqs = await startSqs();
});
afterAll(async () => sqs.close());

const delivered: DeliveryOutcome = { status: 'delivered', ack: true, results: [] };

describe('settling a delivery', () => {
  it('a delivery rejecting with an error that is not a ShutdownError keeps the message: SQS redelivers it', async () => {
    const url = await sqs.createQueue('rejected', { VisibilityTimeout: '1' });
    await sqs.send(url, ['once-rejected']);
    const seen: SourceMessage[] = [];
    const { ctx } = testContext(
      (m) => {
        seen.push(m);
        // The first delivery fails in a way the engine never reports as an outcome: an unexpected error.
        return seen.length === 1 ? Promise.reject(new TypeError('unexpected')) : Promise.resolve(delivered);
      },
      ['rejected'],
    );
    const counted = sqs.countingClient();
    const source = sqsSource({ queues: ['rejected'], waitTime: 1, client: counted.client });
    await source.start(ctx);
    try {
      // Not deleted: it becomes visible again after its 1 s visibility timeout and is received a second time.
      await waitFor(() => seen.length >= 2, 'the message delivered again');
      const [first, second] = seen;
      expect(second?.id).toBe(first?.id);
      expect(first?.headers?.['X-SQS-ApproximateReceiveCount']).toBe('1');
      expect(second?.headers?.['X-SQS-ApproximateReceiveCount']).toBe('2');
      // Acked the second time: deleted then.
      await waitFor(() => source.stats().deleted === 1, 'the delete after the ack');
    } finally {
      await source.stop();
    }
    expect(counted.count('DeleteMessageBatch')).toBe(1);
    expect(seen).toHaveLength(2);
    expect(await sqs.counts(url)).toEqual({ visible: 0, invisible: 0 });
  });
});
