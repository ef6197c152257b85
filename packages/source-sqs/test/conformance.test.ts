import { testSource } from '@connector/testing/conformance';
import { afterAll, beforeAll } from 'vitest';
import { sqsSource } from '../src/index.js';
import { startSqs } from './helpers.js';

let sqs: Awaited<ReturnType<typeof startSqs>>;
beforeAll(async () => {
  sqs = await startSqs();
});
afterAll(async () => sqs.close());

// Visibility 1 s: what a failed delivery leaves un-deleted comes back quickly.
const createQueue = (topic: string) => sqs.createQueue(topic, { VisibilityTimeout: '1' });

testSource({
  name: 'sqs (fauxqs)',
  prepare: async (topic) => void (await createQueue(topic)),
  createSource: ({ topic }) => sqsSource({ queues: [topic], waitTime: 1, clientConfig: sqs.clientConfig }),
  publish: async (topic, messages) => {
    await sqs.send(
      await createQueue(topic),
      messages.map((m) => m.body),
    );
  },
  // Received and not deleted yet: in flight at SQS.
  inFlightAtBroker: async (topic) => (await sqs.counts(await createQueue(topic))).invisible,
});
