import { noopLogger } from '@connector/core';
import { startGateway } from '@connector/testing';
import { testSource } from '@connector/testing/conformance';
import { describe, expect, it } from 'vitest';
import { exampleSource, startConnector } from '../src/index.js';

describe('connector', () => {
  it('starts from env and invokes the function subscribed to its topic', async () => {
    const gateway = await startGateway({ functions: [{ name: 'fn', annotations: { topic: 'example' } }] });
    const connector = await startConnector({
      env: { gateway_url: gateway.url, http_port: '0', interval: '20ms' },
      signals: false,
      logger: noopLogger,
    });
    try {
      const calls = await gateway.waitForInvocations(2, { fn: 'fn' });
      expect(calls[0]?.headers['x-topic']).toBe('example');
    } finally {
      await connector.stop();
      await gateway.close();
    }
  });

  it('fails with one line naming a bad setting', async () => {
    await expect(
      startConnector({ env: { interval: 'soon' }, signals: false, logger: noopLogger }),
    ).rejects.toThrow('invalid interval="soon"');
  });
});

// The contract every source honours. With a real broker, add `publish` and drop the capability flags.
testSource({
  name: 'example (placeholder)',
  createSource: ({ topic }) => exampleSource({ topic, interval: 20 }),
  capabilities: { redelivery: false, backpressure: false },
});
