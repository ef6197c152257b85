import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { startConnectorFromEnv } from '@connector/core';
import { capturedLogger, connectorTexts, secretFiles, startGateway, waitFor } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { mqttOptionsFromEnv, mqttSource } from '../src/index.js';
import { MOSQUITTO, reportMissingMosquitto, startMosquitto } from './helpers/mosquitto.js';

// A known secret through every path the connector reads one (broker password from a file, a password in the broker
// URL, the gateway's basic auth from secret_mount_path), both refused: no log line at any level, no readiness text,
// no /readyz or /metrics body may carry it.
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const BROKER_SECRET = 'mqtt-Broker-Secret-7f3a';
const URL_SECRET = 'url-Secret-9c1d';
const GATEWAY_SECRET = 'gw-Basic-Secret-2b8e';

const MOSQUITTO_PASSWD = ['/usr/bin/mosquitto_passwd', '/usr/local/bin/mosquitto_passwd'].find((p) =>
  existsSync(p),
);

if (MOSQUITTO === undefined) {
  reportMissingMosquitto('the secret redaction test');
} else if (MOSQUITTO_PASSWD === undefined) {
  console.warn('mosquitto_passwd is not installed: the MQTT secret redaction test does not run');
} else {
  const mosquittoPasswd = MOSQUITTO_PASSWD;
  describe('secrets never reach a log line or a readiness text (MQTT)', () => {
    it.each([
      [
        'password_file',
        (url: string, files: (n: string) => string) => ({
          broker: url,
          username: 'alice',
          password_file: files('pw'),
        }),
      ],
      [
        'user:password in broker',
        (url: string) => ({ broker: url.replace('mqtt://', `mqtt://alice:${URL_SECRET}@`) }),
      ],
    ])('%s, refused by the broker and the gateway', async (_what, brokerEnv) => {
      const files = secretFiles({
        pw: `${BROKER_SECRET}\n`,
        'basic-auth-user': 'admin',
        'basic-auth-password': `${GATEWAY_SECRET}\n`,
      });
      cleanups.push(() => files.remove());
      const passwd = files.path('passwd');
      execFileSync(mosquittoPasswd, ['-b', '-c', passwd, 'alice', 'the-right-one'], { stdio: 'pipe' });
      const b = await startMosquitto({ anonymous: false, config: `password_file ${passwd}` });
      cleanups.push(() => b.stop());
      const g = await startGateway({ credentials: { username: 'admin', password: 'another-one' } });
      cleanups.push(() => g.close());
      const logs = capturedLogger();
      const c = await startConnectorFromEnv({
        name: 'mqtt-connector',
        env: {
          gateway_url: g.url,
          basic_auth: 'true',
          secret_mount_path: files.dir,
          http_port: '0',
          http_host: '127.0.0.1',
          id: `secrets-${process.pid}`,
          reconnect_delay: '50ms',
          ...brokerEnv(b.url, files.path),
        },
        source: (env) => mqttSource(mqttOptionsFromEnv(env)),
        signals: false,
        logger: logs,
      });
      cleanups.push(() => c.stop());
      // Both refusals have happened and been reported (and retried at least once).
      await waitFor(
        () => /not authorized|bad user name or password/i.test(logs.text()) && /401/.test(logs.text()),
        {
          timeout: 15_000,
          message: () => logs.text().slice(-2000),
        },
      );
      const text = await connectorTexts(c, logs);
      expect(text).toMatch(/"level":(10|20)/); // trace and debug lines were written too
      for (const secret of [BROKER_SECRET, URL_SECRET, GATEWAY_SECRET]) expect(text).not.toContain(secret);
      expect(c.readiness().join('\n')).toMatch(/source mqtt not connected/);
    });
  });
}
