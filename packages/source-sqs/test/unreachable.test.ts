import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { sqsSource } from '../src/index.js';
import { closedPort, credentials, testContext, waitFor } from './helpers.js';

describe('SQS endpoint refusing connections', () => {
  it('retries ReceiveMessage with back-off and leaves no abort listener behind (200 failures)', async () => {
    const port = await closedPort();
    const endpoint = `http://127.0.0.1:${port}`;
    const warnings: Error[] = [];
    const onWarning = (w: Error) => void warnings.push(w);
    process.on('warning', onWarning);
    const { ctx, signals } = testContext(() => Promise.reject(new Error('nothing is ever received')));
    const source = sqsSource({
      queues: [`${endpoint}/000000000000/gone`],
      visibilityTimeout: 30, // no GetQueueAttributes: start() needs no connection
      waitTime: 1,
      receiveRetryDelay: { min: 1, max: 2 },
      clientConfig: { endpoint, region: 'us-east-1', credentials, maxAttempts: 1 },
    });
    let most = 0;
    const listeners = () => {
      for (const s of signals) most = Math.max(most, getEventListeners(s, 'abort').length);
      return most;
    };
    try {
      await source.start(ctx);
      await waitFor(() => {
        listeners();
        return source.stats().receiveCalls >= 200;
      }, '200 receive attempts');
      listeners();
      expect(source.health?.()).toMatchObject({
        connected: false,
        lastError: expect.stringMatching(/ECONNREFUSED/),
      });
    } finally {
      await source.stop();
      // Warnings are emitted on a later tick.
      await new Promise((r) => setImmediate(r));
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    expect(source.stats()).toMatchObject({ received: 0, deleted: 0 });
    expect(signals.size).toBe(1);
    // While a poller sleeps between tries it has one listener on its signal (the sleep's), not one per failure.
    expect(most).toBeLessThanOrEqual(2);
  });
});
