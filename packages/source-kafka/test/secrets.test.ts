import { startKafkaBroker } from '@connector/kafka-test-broker';
import { GATEWAY_TEST_SECRET, refusedConnectorTexts } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { kafkaOptionsFromEnv, kafkaSource } from '../src/index.js';

// A known secret through every path the connector reads one (the SASL password from a file, the gateway's basic auth
// from secret_mount_path), both refused: no log line at any level, no readiness text, no /readyz or /metrics body may
// carry it.
const SECRET = 'sasl-Known-Secret-6c4a';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('secrets never reach a log line or a readiness text (Kafka)', () => {
  it.each(['plain', 'scram-sha-512'])(
    'sasl_password_file (%s), refused by the broker and the gateway',
    async (mechanism) => {
      const broker = await startKafkaBroker({
        port: 0,
        partitions: 1,
        sasl: { users: [{ username: 'alice', password: 'the-right-one' }] },
      });
      cleanups.push(() => broker.close());
      const { text } = await refusedConnectorTexts(
        {
          name: 'kafka-connector',
          files: { secret: `${SECRET}\n` },
          env: (path) => ({
            brokers: broker.brokers.join(','),
            topics: 'payments',
            group: `secrets-${process.pid}`,
            sasl_mechanism: mechanism,
            sasl_username: 'alice',
            sasl_password_file: path('secret'),
          }),
          source: (env) => kafkaSource(kafkaOptionsFromEnv(env)),
          refused: /authentication .*refused/i,
        },
        (undo) => cleanups.push(undo),
      );
      expect(text).toMatch(/"level":(10|20)/); // trace and debug lines were written too
      for (const secret of [SECRET, GATEWAY_TEST_SECRET]) expect(text).not.toContain(secret);
    },
  );
});
