import { type SourceHarness, testSource } from '@connector/testing/conformance';
import { type MqttProtocolVersion, mqttSource } from '../src/index.js';
import { type AedesBroker, startAedes } from './helpers/aedes.js';
import { client } from './helpers/clients.js';
import { MOSQUITTO, type Mosquitto, startMosquitto } from './helpers/mosquitto.js';

/** The shared source contract, run against a private broker (mosquitto; aedes when mosquitto is missing). */
function harness(protocolVersion: MqttProtocolVersion, kind: 'mosquitto' | 'aedes'): SourceHarness {
  let broker: Mosquitto | AedesBroker | undefined;
  const url = () => {
    if (!broker) throw new Error('broker not started');
    return broker.url;
  };
  return {
    name: `mqtt (${kind}, protocol ${protocolVersion})`,
    async setup() {
      broker =
        kind === 'mosquitto' ? await startMosquitto({ config: 'max_queued_messages 0' }) : await startAedes();
    },
    async teardown() {
      await broker?.stop();
    },
    createSource: ({ topic, group }) =>
      mqttSource({ broker: url(), topics: [topic], clientId: group, protocolVersion, redeliveryDelay: 50 }),
    async publish(topic, messages) {
      const c = await client(url(), { protocolVersion });
      try {
        for (const m of messages) await c.publishAsync(topic, m.body, { qos: 1 });
      } finally {
        await c.endAsync();
      }
    },
  };
}

if (MOSQUITTO) {
  testSource(harness(5, 'mosquitto'));
  testSource(harness(4, 'mosquitto'));
} else {
  console.warn('mosquitto is not installed: the conformance suite runs against aedes (MQTT 3.1.1) only');
}
// The embedded demo broker passes the contract too.
testSource(harness(4, 'aedes'));
