import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryLogger, startGateway, type TestGateway } from '@connector/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  type ControllerOptions,
  configFromEnv,
  createController,
  type Logger,
  redactSecrets,
} from '../src/index.js';
import { memoryConnector, waitFor } from './helpers.js';

// OpenFaaS IAM end to end: the connector reads an identity token from a file (as a projected service-account token
// is mounted), exchanges it at the test gateway's /oauth/token (RFC 8693) and sends the access token as
// `Authorization: Bearer` to /system/*; with function auth, each function gets a token scoped to it.

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gw-iam-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let files = 0;
/** Write `token` to a new token file; returns its path. */
function tokenFile(token: string): string {
  const path = join(dir, `token-${++files}`);
  writeFileSync(path, `${token}\n`);
  return path;
}

/** Replace the file's content the way the kubelet does: a new file renamed over the old one. */
function rotate(path: string, token: string): void {
  writeFileSync(`${path}.new`, token);
  renameSync(`${path}.new`, path);
}

async function iamGateway(opts: { trusted?: string[]; expiresIn?: number; jwtAuth?: boolean } = {}) {
  const g = await startGateway({
    iam: { identityTokens: opts.trusted ?? ['id-token-1'], expiresIn: opts.expiresIn ?? 60 },
    functions: [{ name: 'echo', annotations: { topic: 'orders' }, jwtAuth: opts.jwtAuth ?? false }],
  });
  cleanups.push(() => g.close());
  return g;
}

const connect = (g: TestGateway, o: Partial<ControllerOptions>, logger?: Logger) =>
  memoryConnector(g.url, { rebuildInterval: 100, ...o }, (c) => cleanups.push(c), logger);

const systemCalls = (g: TestGateway) => g.requests.filter((r) => r.path.startsWith('/system/'));
const bearer = (h: string | undefined) => /^Bearer (oft_\S+)$/.exec(h ?? '')?.[1];

describe('OpenFaaS IAM token auth', () => {
  it('exchanges the identity token, sends the access token to /system only, and refreshes it before expiry', async () => {
    const g = await iamGateway({ expiresIn: 2 });
    const { controller, mem } = await connect(g, { gatewayTokenFile: tokenFile('id-token-1') });
    expect(controller.status()).toMatchObject({ synced: true, functions: 1 });
    const exchange = g.requests.find((r) => r.path === '/oauth/token');
    expect(exchange?.method).toBe('POST');
    expect(exchange?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(exchange?.body.toString()))).toEqual({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
      subject_token: 'id-token-1',
    });
    // Refreshed at 80% of the 2 s lifetime while the map keeps rebuilding every 100 ms: each new token was issued
    // before the one it replaces expired (not after a 401).
    await waitFor(() => g.tokens.length >= 3, { timeout: 10_000, message: 'three access tokens issued' });
    for (const [i, t] of g.tokens.entries()) {
      const previous = g.tokens[i - 1];
      if (previous !== undefined) expect(t.expiresAt - 2000).toBeLessThan(previous.expiresAt);
    }
    const used = new Set(systemCalls(g).map((r) => bearer(r.headers['authorization'])));
    expect(used.has(undefined)).toBe(false);
    expect(used.size).toBeGreaterThanOrEqual(2);
    expect(controller.status().synced).toBe(true);
    // Functions without built-in auth never see a token.
    mem.push({ topic: 'orders', body: Buffer.from('x') });
    await waitFor(() => mem.acked.length === 1);
    expect(g.invocations('echo')[0]?.headers['authorization']).toBeUndefined();
  });

  it('after a 401 gets a new access token at once and repeats the call', async () => {
    const g = await iamGateway();
    const { controller } = await connect(g, {
      gatewayTokenFile: tokenFile('id-token-1'),
      rebuildInterval: 60_000,
    });
    expect(g.tokens).toHaveLength(1);
    const before = systemCalls(g).length;
    g.expireTokens();
    await controller.refresh();
    expect(g.tokens).toHaveLength(2);
    const calls = systemCalls(g).slice(before);
    expect(calls.map((r) => `${r.path} ${r.status}`)).toEqual([
      '/system/namespaces 401',
      '/system/namespaces 200',
      '/system/functions 200',
    ]);
    expect(bearer(calls[1]?.headers['authorization'])).toBe(g.tokens[1]?.token);
  });

  it('function tokens: every message delivered while tokens expire and are revoked mid-stream', async () => {
    const g = await iamGateway({ expiresIn: 1, jwtAuth: true });
    const { mem } = await connect(g, {
      gatewayTokenFile: tokenFile('id-token-1'),
      gatewayFunctionAuth: true,
    });
    const fnTokens = () => g.tokens.filter((t) => t.audience === 'openfaas-fn:echo');
    let sent = 0;
    // One message at a time until the function's token has been refreshed twice, expiring all tokens once midway.
    while (fnTokens().length < 3) {
      sent++;
      mem.push({ topic: 'orders', body: Buffer.from(`m${sent}`) });
      await waitFor(() => mem.acked.length + mem.notAcked.length >= sent, { timeout: 10_000 });
      if (sent === 5) g.expireTokens();
    }
    expect(mem.notAcked).toHaveLength(0);
    expect(mem.acked).toHaveLength(sent);
    const ok = new Set(
      g
        .invocations('echo')
        .filter((r) => r.status === 200)
        .map((r) => r.body.toString()),
    );
    expect(ok.size).toBe(sent);
    // Each call carried a token scoped to that function, never the /system one.
    const systemTokens = new Set(g.tokens.filter((t) => t.audience === 'system').map((t) => t.token));
    for (const r of g.invocations('echo')) {
      const t = bearer(r.headers['authorization']);
      expect(t).toBeDefined();
      expect(systemTokens.has(t as string)).toBe(false);
    }
    // The forced expiry was answered by a 401 and the same message went through right after.
    expect(g.invocations('echo').some((r) => r.status === 401)).toBe(true);
  });

  it('a revoked identity token fails readiness with the reason, never printing the token', async () => {
    const secret = 'id-token-revoked-7f3a9c';
    const g = await iamGateway({ trusted: [] });
    const log = memoryLogger();
    const { connector, controller } = await connect(g, { gatewayTokenFile: tokenFile(secret) }, log);
    const line = connector.readiness().find((r) => r.startsWith('topic map never synced'));
    expect(line).toMatch(/token exchange at http:\/\/127\.0\.0\.1:\d+\/oauth\/token answered 400/);
    expect(line).toContain('invalid_grant');
    expect(line).not.toContain(secret);
    // Revoked while running: the refresh fails with the same reason, and no log line or error carries a token.
    g.trustIdentity(secret);
    await controller.refresh();
    g.revokeIdentity(secret);
    const err = await controller.refresh().then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toContain('invalid_grant');
    const everything = JSON.stringify([connector.readiness(), err?.message, log.lines]);
    expect(everything).not.toContain(secret);
    for (const t of g.tokens) expect(everything).not.toContain(t.token);
  });

  it('a token endpoint that echoes the identity token back does not get it into the error', async () => {
    const secret = 'id-token-echoed-51c2';
    const endpoint = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const subject = new URLSearchParams(body).get('subject_token');
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'invalid_grant', error_description: `bad token ${subject}` }));
      });
    });
    await new Promise<void>((r) => endpoint.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => endpoint.close(r)));
    const g = await iamGateway();
    const url = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/token`;
    const { connector } = await connect(g, {
      gatewayTokenFile: tokenFile(secret),
      gatewayTokenExchange: url,
    });
    const line = connector.readiness().find((r) => r.startsWith('topic map never synced'));
    expect(line).toContain(`token exchange at ${url} answered 400 (invalid_grant: bad token [redacted])`);
    expect(line).not.toContain(secret);
  });

  it('re-reads the token file when it changes (a rotated projected token)', async () => {
    const g = await iamGateway({ trusted: ['id-token-1'] });
    const file = tokenFile('id-token-1');
    const { controller } = await connect(g, { gatewayTokenFile: file });
    g.trustIdentity('id-token-2');
    rotate(file, 'id-token-2');
    g.revokeIdentity('id-token-1');
    await controller.refresh();
    expect(g.tokens.at(-1)?.subject).toBe('id-token-2');
    expect(controller.status().lastError).toBeUndefined();
    // The token in use is hidden wherever it is quoted; the rotated-out one is no longer tracked.
    expect(redactSecrets('sent id-token-2, had id-token-1')).toBe('sent [redacted], had id-token-1');
  });

  it('gateway_token_exchange=false sends the file as the bearer token, re-read when it changes', async () => {
    const g = await iamGateway();
    const issue = async () => {
      const res = await fetch(`${g.url}/oauth/token`, {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
          subject_token: 'id-token-1',
        }),
      });
      return ((await res.json()) as { access_token: string }).access_token;
    };
    const first = await issue();
    const file = tokenFile(first);
    const { controller } = await connect(g, { gatewayTokenFile: file, gatewayTokenExchange: false });
    expect(controller.status().synced).toBe(true);
    expect(bearer(systemCalls(g).at(-1)?.headers['authorization'])).toBe(first);
    const second = await issue();
    rotate(file, second);
    await controller.refresh();
    expect(bearer(systemCalls(g).at(-1)?.headers['authorization'])).toBe(second);
    expect(g.requests.filter((r) => r.path === '/oauth/token')).toHaveLength(2); // only the test's own
  });

  it('refuses basic auth with token auth, an unreadable token file and function auth without a token (one line each)', () => {
    const bad = (o: Partial<ControllerOptions>) => {
      try {
        createController({ gatewayUrl: 'http://127.0.0.1:1', ...o });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as Error).message).not.toContain('\n');
        return err as ConfigError;
      }
      throw new Error('expected a ConfigError');
    };
    const file = tokenFile('id-token-1');
    expect(
      bad({ gatewayTokenFile: file, credentials: { username: 'admin', password: 'pw' } }).message,
    ).toMatch(/choose one/);
    const missing = join(dir, 'none');
    expect(bad({ gatewayTokenFile: missing }).message).toBe(
      `invalid gateway_token_file="${missing}": expected a readable file (ENOENT)`,
    );
    expect(bad({ gatewayFunctionAuth: true }).setting).toBe('gateway_token_file');
    expect(
      bad({ gatewayTokenFile: file, gatewayTokenExchange: false, gatewayFunctionAuth: true }).setting,
    ).toBe('gateway_function_auth');
    expect(() =>
      configFromEnv({ basic_auth: 'true', secret_mount_path: dir, gateway_token_file: file }),
    ).toThrow(/basic_auth=true and gateway_token_file are both set/);
  });

  it('reads the token settings from the environment', () => {
    const file = tokenFile('id-token-1');
    expect(configFromEnv({ gateway_token_file: file })).toMatchObject({ gatewayTokenFile: file });
    expect(configFromEnv({ gateway_token_file: file }).gatewayTokenExchange).toBeUndefined();
    expect(configFromEnv({ gateway_token_exchange: 'off' }).gatewayTokenExchange).toBe(false);
    expect(
      configFromEnv({ gateway_token_exchange: 'https://gw.example.com/oauth/token' }).gatewayTokenExchange,
    ).toBe('https://gw.example.com/oauth/token');
    expect(() => configFromEnv({ gateway_token_exchange: 'sometimes' })).toThrow(
      /gateway_token_exchange="sometimes"/,
    );
    expect(configFromEnv({ gateway_function_auth: 'true' }).gatewayFunctionAuth).toBe(true);
  });
});
