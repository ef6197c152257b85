import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
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
      expect(call?.headers['x-topic']).toBe('orders');
      // Deleted after the delivery: nothing visible, nothing in flight.
      const counts = async () => {
        const r = await client.send(
          new GetQueueAttributesCommand({
            QueueUrl: url,
            AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
          }),
        );
        return `${r.Attributes?.['ApproximateNumberOfMessages']}/${r.Attributes?.['ApproximateNumberOfMessagesNotVisible']}`;
      };
      const deadline = Date.now() + 10_000;
      while ((await counts()) !== '0/0' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      expect(await counts()).toBe('0/0');
      await connector.stop();
      expect(gateway.invocations('fn')).toHaveLength(1);
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

  it('fails with one line naming an invalid SQS setting', async () => {
    const err = await startSqsConnector({
      env: { gateway_url: 'http://127.0.0.1:1', queue_name: 'q', max_messages: '11' },
      signals: false,
      logger: noopLogger,
    }).catch((e: unknown) => e as { code?: string; setting?: string; message?: string });
    expect(err).toMatchObject({ code: 'ERR_CONFIG', setting: 'max_messages' });
    expect(String((err as Error).message).split('\n')).toHaveLength(1);
    expect((err as Error).message).toContain('max_messages="11"');
  });
});
