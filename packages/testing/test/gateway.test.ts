import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
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
});
