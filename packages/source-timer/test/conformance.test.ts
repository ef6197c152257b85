import { testSource } from '@connector/testing/conformance';
import { intervalSource } from '../src/index.js';

// A timer has no broker: nothing to publish, nothing to redeliver, no intake to hold back.
testSource({
  name: 'timer (interval)',
  createSource: ({ topic }) => intervalSource({ interval: 20, topic, immediate: true }),
  capabilities: { redelivery: false, backpressure: false },
});
