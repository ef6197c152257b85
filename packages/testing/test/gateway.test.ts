import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { testCertificates } from '../src/certs.js';
import { startGateway, type TestGateway } from '../src/gateway.js';

const open: TestGateway[] = [];
afterEach(async () => {
  for (const g of open.splice(0)) await g.close();
});
async function gw(...args: Parameters<typeof startGateway>) {
  const g = await startGateway(...args);
  open.push(g);
  return g;
}
// A byte body: fetch adds no Content-Type of its own, as a connector sends none unless configured.
const post = (url: string, body = '', headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', body: new Uint8Array(Buffer.from(body)), headers });

describe('test gateway', () => {
  it('serves /healthz, namespaces and FunctionStatus lists like a real gateway', async () => {
    const g = await gw({
      functions: [
        { name: 'a', annotations: { topic: 't' }, labels: { team: 'x' } },
        { name: 'b', namespace: 'staging-fn' },
      ],
    });
    expect((await fetch(`${g.url}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${g.url}/system/namespaces`)).json()).toEqual(['openfaas-fn', 'staging-fn']);
    const list = (await (await fetch(`${g.url}/system/functions?namespace=openfaas-fn`)).json()) as Record<
      string,
      unknown
    >[];
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({
      name: 'a',
      namespace: 'openfaas-fn',
      annotations: { topic: 't' },
      labels: { team: 'x' },
      replicas: 1,
    });
    const staging = (await (await fetch(`${g.url}/system/functions?namespace=staging-fn`)).json()) as Record<
      string,
      unknown
    >[];
    expect(staging[0]).toMatchObject({ name: 'b', annotations: null });
    expect((await fetch(`${g.url}/system/functions?namespace=nope`)).status).toBe(400);
  });

  it('answers 404 on /system/namespaces without namespaces and addresses functions by bare name', async () => {
    const g = await gw({ namespaces: false, functions: [{ name: 'echo' }] });
    expect((await fetch(`${g.url}/system/namespaces`)).status).toBe(404);
    expect(await (await fetch(`${g.url}/system/functions`)).json()).toMatchObject([{ name: 'echo' }]);
    expect(await (await post(`${g.url}/function/echo`, 'hi')).text()).toBe('hi');
    expect(g.invocations('echo')).toHaveLength(1);
  });

  it('requires basic auth on /system only', async () => {
    const g = await gw({ credentials: { username: 'u', password: 'p' }, functions: [{ name: 'f' }] });
    expect((await fetch(`${g.url}/system/namespaces`)).status).toBe(401);
    const auth = { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` };
    expect((await fetch(`${g.url}/system/namespaces`, { headers: auth })).status).toBe(200);
    expect(
      (await fetch(`${g.url}/system/namespaces`, { headers: { authorization: 'Basic eDp5' } })).status,
    ).toBe(401);
    expect((await post(`${g.url}/function/f.openfaas-fn`)).status).toBe(200);
  });

  it('invokes handlers with path, query, headers and text/plain by default; adds call headers; keeps X-Call-Id', async () => {
    const g = await gw({
      functions: [
        {
          name: 'f',
          handler: (req) => ({
            status: 201,
            body: JSON.stringify({
              path: req.path,
              q: req.query.get('x'),
              ct: req.headers['content-type'],
              fn: req.function,
            }),
          }),
        },
      ],
    });
    const res = await post(`${g.url}/function/f.openfaas-fn/sub/path?x=1`, 'b', { 'x-call-id': 'mine' });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ path: '/sub/path', q: '1', ct: 'text/plain', fn: 'f.openfaas-fn' });
    expect(res.headers.get('x-call-id')).toBe('mine');
    expect(res.headers.get('x-start-time')).toBeTruthy();
    expect(res.headers.get('x-duration-seconds')).toBeTruthy();
    const missing = await post(`${g.url}/function/ghost.openfaas-fn`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-openfaas-internal')).toBe('proxy');
    const thrown = await gw({ functions: [{ name: 't', handler: () => Promise.reject(new Error('boom')) }] });
    expect((await post(`${thrown.url}/function/t`)).status).toBe(500);
  });

  it('queues async calls (202 + X-Call-Id), then POSTs the result to X-Callback-Url', async () => {
    const received: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
    const cb = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.end();
      });
    });
    await new Promise<void>((r) => cb.listen(0, '127.0.0.1', r));
    const cbUrl = `http://127.0.0.1:${(cb.address() as AddressInfo).port}/cb`;
    try {
      const g = await gw({
        functions: [{ name: 'f', handler: (req) => ({ status: 200, body: `done:${req.body}` }) }],
      });
      const res = await post(`${g.url}/async-function/f.openfaas-fn`, 'job', { 'x-callback-url': cbUrl });
      expect(res.status).toBe(202);
      expect(await res.text()).toBe('');
      const callId = res.headers.get('x-call-id');
      expect(callId).toMatch(/^[0-9a-f-]{36}$/);
      await post(`${g.url}/async-function/ghost.openfaas-fn`, '', { 'x-callback-url': cbUrl });
      const deadline = Date.now() + 5000;
      while (received.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const ok = received.find((r) => r.body === 'done:job');
      expect(ok?.headers['x-call-id']).toBe(callId);
      expect(ok?.headers['x-function-status']).toBe('200');
      expect(ok?.headers['x-function-name']).toBe('f.openfaas-fn');
      expect(
        received.find((r) => r.headers['x-function-name'] === 'ghost.openfaas-fn')?.headers[
          'x-function-status'
        ],
      ).toBe('503');
      expect(
        (await post(`${g.url}/async-function/f.openfaas-fn`, '', { 'x-callback-url': 'not a url' })).status,
      ).toBe(400);
      expect(g.invocations('f').map((r) => r.async)).toEqual([true, true]);
    } finally {
      cb.close();
    }
  });

  it('injects faults: status with times, delay, drop, hang + release, system faults', async () => {
    const g = await gw({ functions: [{ name: 'f' }] });
    g.fault('f', { status: 503, headers: { 'retry-after': '1' }, times: 2 });
    expect((await post(`${g.url}/function/f.openfaas-fn`)).status).toBe(503);
    const second = await post(`${g.url}/function/f.openfaas-fn`);
    expect([second.status, second.headers.get('retry-after')]).toEqual([503, '1']);
    expect((await post(`${g.url}/function/f.openfaas-fn`)).status).toBe(200);

    g.fault('*', { drop: true, times: 1 });
    await expect(post(`${g.url}/function/f.openfaas-fn`)).rejects.toThrow();
    expect((await post(`${g.url}/function/f.openfaas-fn`)).status).toBe(200);

    g.fault('f', { delay: 50, times: 1 });
    expect((await post(`${g.url}/function/f.openfaas-fn`, 'late')).status).toBe(200);

    g.fault('f', { hang: true });
    const held = [post(`${g.url}/function/f.openfaas-fn`, '1'), post(`${g.url}/function/f.openfaas-fn`, '2')];
    await g.waitForInvocations(8, { fn: 'f' });
    expect(g.pending()).toBe(2);
    g.release();
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200]);
    expect(g.pending()).toBe(0);

    g.fault('f', { hang: true });
    const again = post(`${g.url}/function/f.openfaas-fn`, '3');
    await g.waitForInvocations(9, { fn: 'f' });
    g.fault('f', null); // clearing a hang answers what it held
    expect((await again).status).toBe(200);

    g.fault('system', { status: 502 });
    expect((await fetch(`${g.url}/system/namespaces`)).status).toBe(502);
    g.fault('system', null);
    expect((await fetch(`${g.url}/system/namespaces`)).status).toBe(200);
  });

  it('adds, updates and removes functions at run time', async () => {
    const g = await gw();
    g.addFunction({ name: 'n', annotations: { topic: 'a' } });
    g.updateFunction('n', { annotations: { topic: 'b' }, handler: () => ({ body: 'v2' }) });
    expect(await (await fetch(`${g.url}/system/functions?namespace=openfaas-fn`)).json()).toMatchObject([
      { annotations: { topic: 'b' } },
    ]);
    expect(await (await post(`${g.url}/function/n.openfaas-fn`)).text()).toBe('v2');
    g.removeFunction('n');
    expect((await post(`${g.url}/function/n.openfaas-fn`)).status).toBe(404);
    expect(() => g.updateFunction('n', {})).toThrow(/no function/);
  });

  it('waitForInvocations names what it expected when it times out', async () => {
    const g = await gw({ functions: [{ name: 'f' }] });
    await expect(g.waitForInvocations(1, { fn: 'f', timeout: 50 })).rejects.toThrow(
      'expected 1 invocations of f within 50 ms, got 0',
    );
    const waiting = g.waitForInvocations(2, { fn: 'f' });
    await post(`${g.url}/function/f.openfaas-fn`);
    await post(`${g.url}/function/f.openfaas-fn`);
    expect(await waiting).toHaveLength(2);
  });

  it('serves HTTPS with the given certificate, and with requestCert only to clients with a trusted certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-https-'));
    try {
      const c = testCertificates(dir);
      const get = (url: string, opts: { ca?: string; cert?: string; key?: string }) =>
        new Promise<number>((resolve, reject) => {
          const pem = (p?: string) => (p === undefined ? undefined : readFileSync(p, 'utf8'));
          const req = httpsRequest(
            `${url}/healthz`,
            { ca: pem(opts.ca), cert: pem(opts.cert), key: pem(opts.key) },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          );
          req.on('error', reject);
          req.end();
        });
      const g = await gw({ tls: { cert: c.serverCert, key: c.serverKey } });
      expect(g.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(await get(g.url, { ca: c.ca })).toBe(200);
      await expect(get(g.url, {})).rejects.toThrow(/certificate/);
      const m = await gw({ tls: { cert: c.serverCert, key: c.serverKey, ca: c.ca, requestCert: true } });
      expect(await get(m.url, { ca: c.ca, cert: c.clientCert, key: c.clientKey })).toBe(200);
      await expect(get(m.url, { ca: c.ca })).rejects.toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('IAM: /oauth/token exchanges trusted identity tokens (RFC 8693); /system and jwt_auth functions need a valid bearer', async () => {
    const g = await gw({
      iam: { identityTokens: ['id-1'], expiresIn: 30 },
      functions: [{ name: 'secure', jwtAuth: true }, { name: 'open' }],
    });
    const exchange = async (fields: Record<string, string>) => {
      const res = await fetch(`${g.url}/oauth/token`, { method: 'POST', body: new URLSearchParams(fields) });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };
    const grant = {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
    };
    const system = (token?: string) =>
      fetch(`${g.url}/system/functions`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    expect((await system()).status).toBe(401);
    expect((await system()).headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(await exchange({ ...grant, grant_type: 'password', subject_token: 'id-1' })).toMatchObject({
      status: 400,
      json: { error: 'unsupported_grant_type' },
    });
    expect(await exchange({ ...grant, subject_token: 'id-unknown' })).toMatchObject({
      status: 400,
      json: { error: 'invalid_grant' },
    });
    const ok = await exchange({ ...grant, subject_token: 'id-1' });
    expect(ok).toMatchObject({ status: 200, json: { token_type: 'Bearer', expires_in: 30 } });
    const token = ok.json['access_token'] as string;
    expect((await system(token)).status).toBe(200);
    expect(g.tokens).toMatchObject([{ token, audience: 'system', subject: 'id-1' }]);

    // Function-scoped token: the access token exchanged again with scope=function, audience=namespace:name.
    expect((await post(`${g.url}/function/open`)).status).toBe(200);
    const secure = (t?: string) =>
      post(`${g.url}/function/secure`, 'x', t ? { authorization: `Bearer ${t}` } : {});
    expect((await secure()).status).toBe(401);
    expect((await secure(token)).status).toBe(401);
    const fn = await exchange({
      ...grant,
      subject_token: token,
      scope: 'function',
      audience: 'openfaas-fn:secure',
    });
    expect(fn.status).toBe(200);
    expect((await secure(fn.json['access_token'] as string)).status).toBe(200);

    g.expireTokens();
    expect((await system(token)).status).toBe(401);
    const again = (await exchange({ ...grant, subject_token: 'id-1' })).json['access_token'] as string;
    expect((await system(again)).status).toBe(200);
    g.revokeIdentity('id-1');
    expect((await system(again)).status).toBe(401);
    expect((await exchange({ ...grant, subject_token: 'id-1' })).status).toBe(400);
    g.trustIdentity('id-2');
    expect((await exchange({ ...grant, subject_token: 'id-2' })).status).toBe(200);
  });
});
