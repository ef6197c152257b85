import { getEventListeners } from 'node:events';
import type { SourceContext } from '@connector/core';
import { createTestContext } from '@connector/testing';
import { describe, expect, it } from 'vitest';
import { sqsSource } from '../src/index.js';
import { closedPort, credentials, waitFor } from './helpers.js';

describe('SQS endpoint refusing connections', () => {
  it('retries ReceiveMessage with back-off and leaves no abort listener behind (200 failures)', async () => {
    const port = await closedPort();
    const endpoint = `http://127.0.0.1:${port}`;
    const warnings: Error[] = [];
    const onWarning = (w: Error) => void warnings.push(w);
    process.on('warning', onWarning);
    const test = createTestContext({ topics: ['gone'] });
    // The poller passes its abort signal to waitForCapacity: that is the signal a leak would pile listeners on.
    const signals = new Set<AbortSignal>();
    const ctx: SourceContext = {
      ...test,
      waitForCapacity: (signal) => {
        if (signal) signals.add(signal);
        return test.waitForCapacity(signal);
      },
    };
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
    expect(test.messages).toHaveLength(0);
    expect(signals.size).toBe(1);
    // While a poller sleeps between tries it has one listener on its signal (the sleep's), not one per failure.
    expect(most).toBeLessThanOrEqual(2);
  });
});
