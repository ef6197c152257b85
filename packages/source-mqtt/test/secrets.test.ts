import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { GATEWAY_TEST_SECRET, refusedConnectorTexts, secretFiles } from '@connector/testing';
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
      const users = secretFiles({});
      cleanups.push(() => users.remove());
      const passwd = users.path('passwd');
      execFileSync(mosquittoPasswd, ['-b', '-c', passwd, 'alice', 'the-right-one'], { stdio: 'pipe' });
      const b = await startMosquitto({ anonymous: false, config: `password_file ${passwd}` });
      cleanups.push(() => b.stop());
      const { text, connector } = await refusedConnectorTexts(
        {
          name: 'mqtt-connector',
          files: { pw: `${BROKER_SECRET}\n` },
          env: (path) => ({
            id: `secrets-${process.pid}`,
            reconnect_delay: '50ms',
            ...brokerEnv(b.url, path),
          }),
          source: (env) => mqttSource(mqttOptionsFromEnv(env)),
          refused: /not authorized|bad user name or password/i,
        },
        (undo) => cleanups.push(undo),
      );
      expect(text).toMatch(/"level":(10|20)/); // trace and debug lines were written too
      for (const secret of [BROKER_SECRET, URL_SECRET, GATEWAY_TEST_SECRET])
        expect(text).not.toContain(secret);
      expect(connector.readiness().join('\n')).toMatch(/source mqtt not connected/);
    });
  });
}
