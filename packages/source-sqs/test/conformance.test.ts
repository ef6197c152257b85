import { testSource } from '@connector/testing';
import { afterAll, beforeAll } from 'vitest';
import { sqsSource } from '../src/index.js';
import { startSqs } from './helpers.js';

let sqs: Awaited<ReturnType<typeof startSqs>>;
beforeAll(async () => {
  sqs = await startSqs();
});
afterAll(async () => sqs.close());

testSource({
  name: 'sqs (fauxqs)',
  // Visibility 1 s: what a failed delivery leaves un-deleted comes back quickly.
  prepare: async (topic) => void (await sqs.createQueue(topic, { VisibilityTimeout: '1' })),
  createSource: ({ topic }) => sqsSource({ queues: [topic], waitTime: 1, clientConfig: sqs.clientConfig }),
  publish: async (topic, messages) => {
    const url = await sqs.createQueue(topic, { VisibilityTimeout: '1' });
    await sqs.send(
      url,
      messages.map((m) => m.body),
    );
  },
});
