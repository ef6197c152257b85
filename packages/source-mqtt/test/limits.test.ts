import {
  createConnector,
  createController,
  DEFAULT_MAX_MESSAGE_BYTES,
  type DeadLetter,
} from '@connector/core';
import { startGateway } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { mqttSource } from '../src/index.js';
import { client } from './helpers/clients.js';
import { MOSQUITTO, reportMissingMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';

// A hostile publisher: a 50 MB payload through a real broker must not reach a function, nor come back.
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

if (MOSQUITTO === undefined) {
  reportMissingMosquitto('the message size limit test');
} else {
  describe('max_message_bytes against mosquitto', () => {
    it('a 50 MB payload over the default limit is dead-lettered once, without its body, and never invoked', async () => {
      const g = await startGateway({ functions: [{ name: 'sink', annotations: { topic: 'big/#' } }] });
      cleanups.push(() => g.close());
      const b = await startMosquitto();
      cleanups.push(() => b.stop());
      const letters: DeadLetter[] = [];
      const controller = createController({
        gatewayUrl: g.url,
        topicMatcher: 'mqtt',
        rebuildInterval: 60_000,
      });
      const c = createConnector({
        controller,
        source: mqttSource({ broker: b.url, clientId: `limits-${process.pid}` }),
        deadLetter: (l) => void letters.push(l),
        drainTimeout: 5000,
      });
      cleanups.push(() => c.stop());
      await c.start();
      const p = await client(b.url);
      cleanups.push(() => p.endAsync(true));
      const size = 50 * 1024 * 1024;
      expect(size).toBeGreaterThan(DEFAULT_MAX_MESSAGE_BYTES);
      await p.publishAsync('big/one', Buffer.alloc(size, 0x61), { qos: 1 });
      await waitFor(() => letters.length === 1, {
        timeout: 30_000,
        message: () => `${letters.length} letters`,
      });
      const [letter] = letters;
      expect(letter?.result.error?.code).toBe('ERR_MESSAGE_TOO_LARGE');
      expect(letter?.reason).toBe(
        `message of ${size} bytes is over max_message_bytes (${DEFAULT_MAX_MESSAGE_BYTES})`,
      );
      expect(letter?.message.topic).toBe('big/one');
      expect(letter?.message.body.byteLength).toBe(0);
      // The next message is delivered; the big one was acked (PUBACK), so the broker never hands it back.
      await p.publishAsync('big/two', 'small', { qos: 1 });
      await waitFor(() => g.invocations().length === 1);
      expect(Buffer.from(g.invocations()[0]?.body ?? '').toString()).toBe('small');
      await c.stop();
      expect(letters).toHaveLength(1);
      expect(g.invocations()).toHaveLength(1);
    });
  });
}
