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
  it.each([
    ['rejects', 'rejected'],
    ['throws synchronously', 'thrown'],
  ])(
    'a delivery that %s with an error that is not a ShutdownError keeps the message: SQS redelivers it',
    async (how, queue) => {
      const url = await sqs.createQueue(queue, { VisibilityTimeout: '1' });
      await sqs.send(url, ['once-failed']);
      const seen: SourceMessage[] = [];
      const { ctx } = testContext(
        (m) => {
          seen.push(m);
          if (seen.length > 1) return Promise.resolve(delivered);
          // The first delivery fails in a way the engine never reports as an outcome: an unexpected error.
          if (how === 'rejects') return Promise.reject(new TypeError('unexpected'));
          throw new TypeError('unexpected');
        },
        [queue],
      );
      const counted = sqs.countingClient();
      const source = sqsSource({ queues: [queue], waitTime: 1, client: counted.client });
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
        // Both deliveries settled: nothing is left unsettled (a failed one is kept at SQS, not in the source).
        expect(source.health?.()?.detail).toMatchObject({ inFlight: 0 });
      } finally {
        await source.stop();
      }
      expect(counted.count('DeleteMessageBatch')).toBe(1);
      expect(source.stats().released).toBe(0);
      expect(seen).toHaveLength(2);
      expect(await sqs.counts(url)).toEqual({ visible: 0, invisible: 0 });
    },
  );
});
