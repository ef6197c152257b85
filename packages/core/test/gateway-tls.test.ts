import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type GatewayTls,
  memoryLogger,
  startGateway,
  type TestCertificates,
  type TestGateway,
  testCertificates,
} from '@connector/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  type ControllerOptions,
  configFromEnv,
  createController,
  type Logger,
} from '../src/index.js';
import { memoryConnector, waitFor } from './helpers.js';

// One CA + server + client certificate the gateway trusts, and a second CA (an "unknown" one) with its own client
// certificate: made at test time with openssl, never committed.
let dir: string;
let certs: TestCertificates;
let other: TestCertificates;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gw-tls-'));
  certs = testCertificates(mkdtempSync(join(dir, 'trusted-')));
  other = testCertificates(mkdtempSync(join(dir, 'unknown-')));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const fn = { name: 'echo', annotations: { topic: 'orders' } };

async function httpsGateway(tls: Partial<GatewayTls> = {}): Promise<TestGateway> {
  const g = await startGateway({
    tls: { cert: certs.serverCert, key: certs.serverKey, ...tls },
    functions: [fn],
  });
  cleanups.push(() => g.close());
  return g;
}

/** A connector (controller + engine + a memory source) against `g` with the given TLS settings. */
const connect = (g: TestGateway, tls: Partial<ControllerOptions>, logger?: Logger) =>
  memoryConnector(
    g.url,
    { rebuildInterval: 200, systemTimeout: 2000, ...tls },
    (c) => cleanups.push(c),
    logger,
  );

/** Discovery synced, and a message published to the source reaches the function over TLS. */
async function expectWorks(g: TestGateway, tls: Partial<ControllerOptions>, logger?: Logger) {
  const { controller, connector, mem } = await connect(g, tls, logger);
  expect(controller.status()).toMatchObject({ synced: true, functions: 1 });
  mem.push({ topic: 'orders', body: Buffer.from('{"id":1}') });
  await waitFor(() => mem.acked.length === 1, { message: 'the message acked' });
  expect(g.invocations('echo')).toHaveLength(1);
  expect(g.invocations('echo')[0]?.body.toString()).toBe('{"id":1}');
  expect(connector.ready()).toBe(true);
}

/** Readiness fails with one line that says "certificate" and names the gateway; invocations fail the same way. */
async function expectRefused(g: TestGateway, tls: Partial<ControllerOptions>, wanted: RegExp) {
  const { controller, connector } = await connect(g, tls);
  const reasons = connector.readiness();
  const line = reasons.find((r) => r.startsWith('topic map never synced'));
  expect(line).toBeDefined();
  expect(line).toContain('certificate');
  expect(line).toContain(g.url);
  expect(line).toMatch(wanted);
  expect(line).not.toMatch(/\n|\s+at /);
  const result = await controller.invokeFunction('echo', 'x');
  expect(result.error?.message).toContain('certificate');
  expect(result.error?.message).toContain(g.url);
  expect(g.invocations()).toHaveLength(0);
}

/** The one-line ConfigError a controller with these settings fails with at creation. */
function bad(o: Partial<ControllerOptions>): ConfigError {
  try {
    createController({ gatewayUrl: 'https://127.0.0.1:1', ...o });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('\n');
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('gateway TLS', () => {
  it('trusts a private CA given as gateway_ca_file: discovery and invocation over HTTPS', async () => {
    const g = await httpsGateway();
    expect(g.url).toMatch(/^https:/);
    await expectWorks(g, { gatewayCaFile: certs.ca });
  });

  it('refuses a gateway signed by an unknown CA with one clear line (readiness and invocation)', async () => {
    const g = await httpsGateway();
    await expectRefused(g, {}, /gateway_ca_file/);
    await expectRefused(g, { gatewayCaFile: other.ca }, /not trusted/);
  });

  it('presents the client certificate when the gateway requires mutual TLS', async () => {
    const g = await httpsGateway({ ca: certs.ca, requestCert: true });
    await expectWorks(g, {
      gatewayCaFile: certs.ca,
      gatewayCertFile: certs.clientCert,
      gatewayKeyFile: certs.clientKey,
    });
  });

  it('fails clearly when the gateway requires a client certificate and none (or an untrusted one) is presented', async () => {
    const g = await httpsGateway({ ca: certs.ca, requestCert: true });
    await expectRefused(g, { gatewayCaFile: certs.ca }, /client certificate|gateway_cert_file/);
    await expectRefused(
      g,
      { gatewayCaFile: certs.ca, gatewayCertFile: other.clientCert, gatewayKeyFile: other.clientKey },
      /client certificate|gateway_cert_file/,
    );
  });

  it('gateway_tls_insecure works against an unknown CA and says so loudly, once, at start', async () => {
    const g = await httpsGateway();
    const log = memoryLogger();
    await expectWorks(g, { gatewayTlsInsecure: true }, log);
    const warnings = log.lines.filter((l) => l.level === 'warn' && /NOT verified/.test(String(l.msg)));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.obj).toMatchObject({ setting: 'gateway_tls_insecure', gateway: g.url });
  });

  it('a token endpoint on another origin (gateway_token_exchange=URL) is reached with the same TLS settings', async () => {
    const g = await startGateway({
      tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, requestCert: true },
      iam: { identityTokens: ['id-token-1'] },
      functions: [fn],
    });
    cleanups.push(() => g.close());
    const token = join(dir, 'id-token');
    writeFileSync(token, 'id-token-1');
    const endpoint = `https://localhost:${g.port}/oauth/token`; // another origin than https://127.0.0.1:port
    await expectWorks(g, {
      gatewayCaFile: certs.ca,
      gatewayCertFile: certs.clientCert,
      gatewayKeyFile: certs.clientKey,
      gatewayTokenFile: token,
      gatewayTokenExchange: endpoint,
    });
    expect(g.tokens).toHaveLength(1);
  });

  it('refuses half a client certificate, unreadable files and TLS settings on an http gateway (one line each)', () => {
    expect(bad({ gatewayCertFile: certs.clientCert }).setting).toBe('gateway_key_file');
    expect(bad({ gatewayKeyFile: certs.clientKey }).setting).toBe('gateway_cert_file');
    const missing = join(dir, 'nope.pem');
    const unreadable = bad({ gatewayCaFile: missing });
    expect(unreadable.setting).toBe('gateway_ca_file');
    expect(unreadable.message).toBe(
      `invalid gateway_ca_file="${missing}": expected a readable file (ENOENT)`,
    );
    expect(bad({ gatewayCertFile: missing, gatewayKeyFile: certs.clientKey }).message).toContain(
      `gateway_cert_file="${missing}"`,
    );
    const http = bad({ gatewayUrl: 'http://127.0.0.1:1', gatewayCaFile: certs.ca });
    expect(http.message).toContain('expected an https gateway_url');
  });

  it('checks the PEM files at start, naming the gateway setting (the rules: kit/setting-files)', () => {
    const noCert = join(dir, 'no-cert.pem');
    writeFileSync(noCert, 'not a certificate\n');
    expect(bad({ gatewayCaFile: noCert }).message).toBe(
      `invalid gateway_ca_file="${noCert}": expected a PEM file holding a certificate (-----BEGIN CERTIFICATE-----)`,
    );
    expect(bad({ gatewayCertFile: certs.clientKey, gatewayKeyFile: certs.clientKey }).setting).toBe(
      'gateway_cert_file',
    );
    const mismatch = bad({ gatewayCertFile: certs.clientCert, gatewayKeyFile: other.clientKey });
    expect(mismatch.setting).toBe('gateway_key_file');
    expect(mismatch.message).toBe(
      `invalid gateway_key_file="${other.clientKey}": expected the private key of gateway_cert_file="${certs.clientCert}" (key values mismatch)`,
    );
  });

  it('reads the TLS settings from the environment', () => {
    const config = configFromEnv({
      gateway_url: 'https://127.0.0.1:8443',
      gateway_ca_file: certs.ca,
      gateway_cert_file: certs.clientCert,
      gateway_key_file: certs.clientKey,
      gateway_tls_insecure: 'false',
    });
    expect(config).toMatchObject({
      gatewayCaFile: certs.ca,
      gatewayCertFile: certs.clientCert,
      gatewayKeyFile: certs.clientKey,
      gatewayTlsInsecure: false,
    });
  });
});
