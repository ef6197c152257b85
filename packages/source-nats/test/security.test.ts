import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestContext, testCertificates, waitFor } from '@connector/testing';
import { nkeys } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { natsOptionsFromEnv, natsSource } from '../src/index.js';
import { cleanup, connector, gateway, okBodies } from './helpers/connector.js';
import { client, startNatsServer } from './helpers/nats.js';

const user = nkeys.createUser();
const seed = new TextDecoder().decode(user.getSeed());
const pub = user.getPublicKey();

describe('credentials', () => {
  it('connects with user/password, token or an nkey seed, and a refusal is ERR_BROKER_AUTH', async () => {
    const s = await startNatsServer({
      config: `authorization { users = [ { user: u, password: "pw d" }, { nkey: ${pub} } ] }`,
    });
    cleanup.add(() => s.stop());
    const g = await gateway({ functions: [{ name: 'fn', annotations: { topic: 'sec.x' } }] });
    await connector(g, {
      servers: s.url,
      mode: 'core',
      subjects: ['sec.x'],
      auth: { user: 'u', password: 'pw d' },
    });
    await connector(g, { servers: s.url, mode: 'core', subjects: ['sec.x'], auth: { nkeySeed: seed } });
    const nc = await client(s.url, { user: 'u', pass: 'pw d' });
    cleanup.add(() => nc.close());
    nc.publish('sec.x', 'secret-ok');
    await waitFor(() => g.invocations('fn').length === 2 && okBodies(g).has('secret-ok'));

    const bad = natsSource({ servers: s.url, mode: 'core', auth: { user: 'u', password: 'wrong' } });
    const err = await bad.start(createTestContext()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_BROKER_AUTH', canRetry: false });
    expect((err as Error).message).not.toContain('wrong');
    expect(bad.health?.()).toMatchObject({ connected: false });
  });

  it('connects with a token', async () => {
    const s = await startNatsServer({ config: 'authorization { token: "t0ken" }' });
    cleanup.add(() => s.stop());
    const src = natsSource({ servers: s.url, mode: 'core', auth: { token: 't0ken' } });
    await src.start(createTestContext());
    expect(src.health?.().connected).toBe(true);
    await src.stop();
    expect(src.health?.().connected).toBe(false);
  });
});

describe('TLS', () => {
  it('connects with mutual TLS from ca_file/cert_file/key_file, and refuses without a client certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nats-tls-'));
    cleanup.add(async () => rmSync(dir, { recursive: true, force: true }));
    const c = testCertificates(dir);
    const s = await startNatsServer({
      config: `tls { cert_file: "${c.serverCert}", key_file: "${c.serverKey}", ca_file: "${c.ca}", verify: true }`,
    });
    cleanup.add(() => s.stop());
    const url = `tls://127.0.0.1:${s.port}`;
    const ok = natsSource(
      natsOptionsFromEnv({
        nats_url: url,
        mode: 'core',
        ca_file: c.ca,
        cert_file: c.clientCert,
        key_file: c.clientKey,
      }),
    );
    await ok.start(createTestContext());
    expect(ok.health?.().connected).toBe(true);
    await ok.stop();
    const noCert = natsSource(natsOptionsFromEnv({ nats_url: url, mode: 'core', ca_file: c.ca }));
    const err = await noCert.start(createTestContext()).catch((e: unknown) => e);
    // NATS.js itself only says `timeout` (TLS 1.3: the refusal comes after the client's handshake); the source asks
    // the server's INFO why, and says it in one line that names the settings.
    expect(err).toMatchObject({
      code: 'ERR_BROKER_AUTH',
      canRetry: false,
      brokerCode: 'TLS_CLIENT_CERT_REQUIRED',
    });
    expect(String((err as Error).message)).toBe(
      `connect to ${url}: ${url} requires a TLS client certificate (it verifies them): set cert_file and key_file`,
    );
  });
});
