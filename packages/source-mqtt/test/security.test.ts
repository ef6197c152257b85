import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OPENSSL, testCertificates } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type MqttSourceOptions, mqttOptionsFromEnv, mqttSource } from '../src/index.js';
import { client } from './helpers/clients.js';
import { type TestContext, testContext } from './helpers/context.js';
import {
  MOSQUITTO,
  type Mosquitto,
  type MosquittoOptions,
  reportMissingMosquitto,
  startMosquitto,
} from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function broker(opts: MosquittoOptions): Promise<Mosquitto> {
  const b = await startMosquitto(opts);
  cleanups.push(() => b.stop());
  return b;
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'mqtt-sec-'));
  cleanups.push(async () => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Start a source, publish one message with `publish` options and wait for its delivery. */
async function roundTrip(
  options: MqttSourceOptions,
  url: string,
  pubOpts: Parameters<typeof client>[1] = {},
) {
  const ctx: TestContext = testContext();
  const s = mqttSource(options);
  await s.start(ctx);
  cleanups.push(() => s.stop());
  const p = await client(url, pubOpts);
  cleanups.push(() => p.endAsync(true));
  await p.publishAsync('secure/t', 'secret-payload', { qos: 1 });
  await waitFor(() => ctx.acked.length === 1);
  return ctx;
}

const MOSQUITTO_PASSWD = ['/usr/bin/mosquitto_passwd', '/usr/local/bin/mosquitto_passwd'].find((p) =>
  existsSync(p),
);

if (MOSQUITTO === undefined) {
  reportMissingMosquitto('the auth and TLS tests');
} else {
  describe('authentication and TLS against mosquitto', () => {
    if (MOSQUITTO_PASSWD === undefined)
      console.warn('mosquitto_passwd is not installed: the auth test does not run');
    else
      it('authenticates with username and password; a wrong password fails start without leaking it', async () => {
        const dir = tempDir();
        const pwfile = join(dir, 'passwd');
        execFileSync(MOSQUITTO_PASSWD, ['-b', '-c', pwfile, 'alice', 's3cret-pw'], { stdio: 'pipe' });
        const b = await broker({ anonymous: false, config: `password_file ${pwfile}` });
        const ok = { broker: b.url, topics: ['secure/#'], clientId: `auth-${process.pid}` };
        const ctx = await roundTrip({ ...ok, username: 'alice', password: 's3cret-pw' }, b.url, {
          username: 'alice',
          password: 's3cret-pw',
        });
        expect(ctx.messages[0]?.topic).toBe('secure/t');

        const bad = mqttSource({
          ...ok,
          clientId: `auth-bad-${process.pid}`,
          username: 'alice',
          password: 'wrong-pw',
        });
        const err = await bad.start(testContext()).then(
          () => undefined,
          (e: unknown) => e as Error & { code?: string; canRetry?: boolean },
        );
        expect(err).toMatchObject({ code: 'ERR_BROKER_AUTH', canRetry: false });
        expect(err?.message).toMatch(
          /^cannot connect to mqtt:\/\/127\.0\.0\.1:\d+\/? \(client id auth-bad-\d+\): /,
        );
        expect(err?.message).toMatch(/Not authorized|Bad User Name or Password/i);
        expect(err?.message).not.toContain('wrong-pw');
        expect(bad.health?.().connected).toBe(false);
        // a password in the broker URL works too and is never shown
        const inUrl = mqttSource({
          broker: `mqtt://alice:s3cret-pw@127.0.0.1:${b.port}`,
          topics: ['x'],
          clientId: `auth-url-${process.pid}`,
        });
        await inUrl.start(testContext());
        cleanups.push(() => inUrl.stop());
        expect(inUrl.health?.().connected).toBe(true);
        expect(JSON.stringify(inUrl.health?.())).not.toContain('s3cret');
      });

    if (OPENSSL === undefined) console.warn('openssl is not installed: the TLS tests do not run');
    else
      it('connects over TLS with a test CA (and mutual TLS), configured from env files; refuses an unknown CA', async () => {
        const dir = tempDir();
        const certs = testCertificates(dir);
        const tlsListener = `cafile ${certs.ca}\ncertfile ${certs.serverCert}\nkeyfile ${certs.serverKey}`;
        const b = await broker({ scheme: 'mqtts', listener: tlsListener });
        const env = { broker: b.url, topics: 'secure/#', id: `tls-${process.pid}`, ca_file: certs.ca };
        const ctx = await roundTrip(mqttOptionsFromEnv(env), b.url, { ca: readFileSync(certs.ca) });
        expect(ctx.messages).toHaveLength(1);

        const unknownCa = mqttSource({ broker: b.url, topics: ['x'], clientId: `tls-bad-${process.pid}` });
        const err = await unknownCa.start(testContext()).then(
          () => undefined,
          (e: unknown) => e as Error & { code?: string; canRetry?: boolean },
        );
        expect(err).toMatchObject({ code: 'ERR_BROKER', canRetry: false });
        expect(err?.message).toMatch(/certificate/i);

        const m = await broker({ scheme: 'mqtts', listener: `${tlsListener}\nrequire_certificate true` });
        const mtls = mqttOptionsFromEnv({
          broker: m.url,
          topics: 'secure/#',
          id: `mtls-${process.pid}`,
          ca_file: certs.ca,
          cert_file: certs.clientCert,
          key_file: certs.clientKey,
        });
        const ctx2 = await roundTrip(mtls, m.url, {
          ca: readFileSync(certs.ca),
          cert: readFileSync(certs.clientCert),
          key: readFileSync(certs.clientKey),
        });
        expect(ctx2.messages).toHaveLength(1);
        const noCert = mqttSource({
          broker: m.url,
          topics: ['x'],
          clientId: `mtls-bad-${process.pid}`,
          tls: { ca: readFileSync(certs.ca) },
        });
        await expect(noCert.start(testContext())).rejects.toMatchObject({ code: 'ERR_BROKER' });
      });
  });
}
