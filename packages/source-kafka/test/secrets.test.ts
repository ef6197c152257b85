import { startConnectorFromEnv } from '@connector/core';
import { startKafkaBroker } from '@connector/kafka-test-broker';
import { capturedLogger, connectorTexts, secretFiles, startGateway, waitFor } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { kafkaOptionsFromEnv, kafkaSource } from '../src/index.js';

// A known secret through every path the connector reads one (the SASL password from a file, the gateway's basic auth
// from secret_mount_path), both refused: no log line at any level, no readiness text, no /readyz or /metrics body may
// carry it.
const SECRET = 'sasl-Known-Secret-6c4a';
const GATEWAY_SECRET = 'gw-Basic-Secret-1d5f';

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
      const files = secretFiles({
        secret: `${SECRET}\n`,
        'basic-auth-user': 'admin',
        'basic-auth-password': `${GATEWAY_SECRET}\n`,
      });
      cleanups.push(() => files.remove());
      const g = await startGateway({ credentials: { username: 'admin', password: 'another-one' } });
      cleanups.push(() => g.close());
      const logs = capturedLogger();
      const c = await startConnectorFromEnv({
        name: 'kafka-connector',
        env: {
          gateway_url: g.url,
          basic_auth: 'true',
          secret_mount_path: files.dir,
          http_port: '0',
          http_host: '127.0.0.1',
          brokers: broker.brokers.join(','),
          topics: 'payments',
          group: `secrets-${process.pid}`,
          sasl_mechanism: mechanism,
          sasl_username: 'alice',
          sasl_password_file: files.path('secret'),
        },
        source: (env) => kafkaSource(kafkaOptionsFromEnv(env)),
        signals: false,
        logger: logs,
      });
      cleanups.push(() => c.stop());
      await waitFor(() => /authentication .*refused/i.test(logs.text()) && /401/.test(logs.text()), {
        timeout: 20_000,
        message: () => `${c.readiness().join('\n')}\n${logs.text().slice(-2000)}`,
      });
      const text = await connectorTexts(c, logs);
      expect(text).toMatch(/"level":(10|20)/); // trace and debug lines were written too
      for (const secret of [SECRET, GATEWAY_SECRET]) expect(text).not.toContain(secret);
    },
  );
});
