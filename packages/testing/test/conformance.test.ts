import { testSource } from '../src/conformance.js';
import { MemoryBroker, memorySource } from './memory-broker.js';

const broker = new MemoryBroker();

/** The correct in-memory source passes the whole suite (through the conformance entry). */
testSource({
  name: 'in-memory broker',
  createSource: ({ topic }) => memorySource(broker, topic),
  publish: async (topic, messages) =>
    broker.publish(
      topic,
      messages.map((m) => m.body),
    ),
  inFlightAtBroker: (topic) => broker.inFlight(topic),
});
