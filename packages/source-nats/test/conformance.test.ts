import { type SourceHarness, testSource } from '@connector/testing/conformance';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { natsSource } from '../src/index.js';
import { client, type NatsServer, startNatsServer } from './helpers/nats.js';

/** The shared source contract, against a private JetStream server: one stream per topic, the group as consumer. */
function harness(): SourceHarness {
  let server: NatsServer | undefined;
  const url = () => {
    if (!server) throw new Error('server not started');
    return server.url;
  };
  return {
    name: 'nats (JetStream)',
    async setup() {
      server = await startNatsServer();
    },
    async teardown() {
      await server?.stop();
    },
    createSource: ({ topic, group }) =>
      natsSource({
        servers: url(),
        stream: `S-${topic}`,
        consumer: group,
        subjects: [topic],
        maxAckPending: 64,
        ackWait: 2000,
        nakDelay: { min: 50, max: 200 },
        fetchExpires: 1000,
      }),
    /** Messages the server handed to the topic's consumers and that are not acked yet. */
    async inFlightAtBroker(topic) {
      const nc = await client(url());
      try {
        const jsm = await jetstreamManager(nc);
        const consumers = await jsm.consumers.list(`S-${topic}`).next();
        return consumers.reduce((n, ci) => n + ci.num_ack_pending, 0);
      } finally {
        await nc.close();
      }
    },
    intakeLimit: 10, // one open pull (batch, default 10) may still fill after the capacity ran out
    async publish(topic, messages) {
      const nc = await client(url());
      try {
        const js = jetstream(nc);
        for (const m of messages) await js.publish(topic, m.body);
      } finally {
        await nc.close();
      }
    },
  };
}

testSource(harness());
