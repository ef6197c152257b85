import type { SourceContext } from '@connector/core';
import { createTestContext, outcomes } from '@connector/testing';
import { describe, expect, it } from 'vitest';
import { sqsSource } from '../src/index.js';
import { sqsSuite, waitFor } from './helpers.js';

const { sqs } = sqsSuite();

describe('settling a delivery', () => {
  it.each([
    ['rejects', 'rejected'],
    ['throws synchronously', 'thrown'],
  ])(
    'a delivery that %s with an error that is not a ShutdownError keeps the message: SQS redelivers it',
    async (how, queue) => {
      const url = await sqs.createQueue(queue, { VisibilityTimeout: '1' });
      await sqs.send(url, ['once-failed']);
      // The first delivery fails in a way the engine never reports as an outcome: an unexpected error.
      const test = createTestContext({
        topics: [queue],
        answer: (_, n) =>
          how === 'rejects' && n === 1 ? Promise.reject(new TypeError('unexpected')) : outcomes.delivered(),
      });
      let calls = 0;
      const ctx: SourceContext =
        how === 'rejects'
          ? test
          : {
              ...test,
              deliver: (m) => {
                if (++calls === 1) throw new TypeError('unexpected');
                return test.deliver(m);
              },
            };
      const counted = sqs.countingClient();
      const source = sqsSource({ queues: [queue], waitTime: 1, client: counted.client });
      await source.start(ctx);
      try {
        // Not deleted: it becomes visible again after its 1 s visibility timeout and is received a second time.
        await waitFor(() => test.acked.length === 1, 'the message delivered again and acked');
        const [first, second] = test.messages.slice(-2);
        if (how === 'rejects') expect(test.deliveries.map((d) => d.state)).toEqual(['rejected', 'acked']);
        else expect(test.deliveries.map((d) => d.state)).toEqual(['acked']);
        const received = test.deliveries.at(-1)?.message.headers?.['X-SQS-ApproximateReceiveCount'];
        expect(received).toBe('2');
        if (how === 'rejects') expect(second?.id).toBe(first?.id);
        // Acked the second time: deleted then.
        await waitFor(() => source.stats().deleted === 1, 'the delete after the ack');
        // Both deliveries settled: nothing is left unsettled (a failed one is kept at SQS, not in the source).
        expect(source.health?.()?.detail).toMatchObject({ inFlight: 0 });
      } finally {
        await source.stop();
      }
      expect(counted.count('DeleteMessageBatch')).toBe(1);
      expect(source.stats().released).toBe(0);
      expect(await sqs.counts(url)).toEqual({ visible: 0, invisible: 0 });
    },
  );
});
