import { CreateQueueCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { noopLogger } from '@connector/core';
import { startGateway } from '@connector/testing';
import { startFauxqs } from 'fauxqs';
import { describe, expect, it } from 'vitest';
import { startSqsConnector } from '../src/index.js';

describe('sqs-connector', () => {
  it('runs from env: queue_name, endpoint, region; credentials from the SDK chain', async () => {
    const sqs = await startFauxqs({ port: 0, logger: false });
    const gateway = await startGateway({ functions: [{ name: 'fn', annotations: { topic: 'orders' } }] });
    const creds = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };
    const saved = { ...process.env };
    Object.assign(process.env, creds);
    const client = new SQSClient({
      endpoint: sqs.address,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    try {
      const url = (await client.send(new CreateQueueCommand({ QueueName: 'orders' }))).QueueUrl;
      await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'order-1' }));
      const connector = await startSqsConnector({
        env: {
          gateway_url: gateway.url,
          http_port: '0',
          queue_name: 'orders',
          endpoint: sqs.address,
          region: 'us-east-1',
          wait_time: '1s',
        },
        signals: false,
        logger: noopLogger,
      });
      const [call] = await gateway.waitForInvocations(1, { fn: 'fn' });
      expect(call?.body.toString()).toBe('order-1');
      await connector.stop();
    } finally {
      process.env = saved;
      client.destroy();
      await gateway.close();
      await sqs.stop();
    }
  });

  it('fails with one line naming a missing queue', async () => {
    await expect(startSqsConnector({ env: {}, signals: false, logger: noopLogger })).rejects.toThrow(
      'invalid queue_name="": expected a queue name or URL (set queue_url or queue_name)',
    );
  });
});
