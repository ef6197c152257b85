import { getEventListeners } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCertificates, waitFor } from '@connector/testing';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, GatewayError } from '../src/errors.js';
import { createInvoker, type InvokerOptions } from '../src/invoker.js';
import { redactSecrets } from '../src/secrets.js';

// The invoker against a plain local HTTP server: what goes out (path, headers) and how every answer is classified.

type Handler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;
interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let dir: string | undefined;
afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});
/** An identity token file (token auth), removed after the test. */
const tokenFile = (token: string) => {
  dir ??= mkdtempSync(join(tmpdir(), 'inv-token-'));
  const file = join(dir, 'token');
  writeFileSync(file, token);
  return file;
};

async function peer(handler: Handler = (_q, _b, res) => res.end('ok')) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: body.toString(),
      });
      handler(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function invoker(url: string, o: Partial<InvokerOptions> = {}) {
  const inv = createInvoker({
    gatewayUrl: url,
    userAgent: 'ua/1',
    connectorName: 'conn',
    timeout: 5000,
    ...o,
  });
  cleanups.push(() => inv.close());
  return inv;
}

describe('invoker: requests', () => {
  // fast-check counterexamples: '..' by name was POST /function/.%2E (the parent of /function/ once decoded), and a
  // lone surrogate threw from invoke() instead of returning a result.
  it.each(['..', '.', '\ud800.ns', 'fn.\udfff'])(
    'refuses to invoke %j: no request, ERR_INVALID_REQUEST',
    async (name) => {
      const p = await peer();
      const inv = invoker(p.url);
      const r = await inv.invoke(name, 't', 'in');
      expect(r.error).toMatchObject({ code: 'ERR_INVALID_REQUEST', canRetry: false });
      expect(r.status).toBe(0);
      expect(p.seen).toEqual([]);
    },
  );

  it('POSTs to <prefix>/function/<name>.<ns> with the connector headers; message headers under the policy', async () => {
    const p = await peer((_q, _b, res) =>
      res.writeHead(200, { 'x-call-id': 'c1', 'x-multi': ['a', 'b'] }).end('out'),
    );
    const inv = invoker(`${p.url}/base//`);
    const r = await inv.invoke('fn.ns', 'tö pic', 'in', {
      headers: { 'X-Msg': 'v', host: 'evil' },
      contentType: 'text/plain',
      attempt: 3,
    });
    expect(p.seen[0]?.method).toBe('POST');
    expect(p.seen[0]?.url).toBe('/base/function/fn.ns');
    expect(p.seen[0]?.body).toBe('in');
    const h = p.seen[0]?.headers;
    expect(h?.['x-topic']).toBe('t%C3%B6%20pic');
    expect(h?.['x-connector']).toBe('conn');
    expect(h?.['user-agent']).toBe('ua/1');
    expect(h?.['content-type']).toBe('text/plain');
    expect(h?.['x-msg']).toBe('v');
    expect(h?.host).not.toBe('evil');
    expect(h?.authorization).toBeUndefined();
    expect(r).toMatchObject({
      topic: 'tö pic',
      function: 'fn.ns',
      status: 200,
      async: false,
      attempt: 3,
      final: true,
      callId: 'c1',
    });
    expect(r.error).toBeUndefined();
    expect(Buffer.from(r.body).toString()).toBe('out');
    expect(r.headers['x-multi']).toBe('a, b');
    expect(r.duration).toBeGreaterThan(0);
    // A FunctionInfo target: its name and namespace, encoded; bare names without a namespace.
    await inv.invoke({ name: 'a b', namespace: 'n', address: 'a b.n' } as never, 't', new Uint8Array([1]));
    expect(p.seen[1]?.url).toBe('/base/function/a%20b.n');
    await inv.invoke('bare', 't', '');
    expect(p.seen[2]?.url).toBe('/base/function/bare');
  });

  it('content type: a plain per-message one, else the configured one, else none; X-Topic only when wanted', async () => {
    const p = await peer();
    const inv = invoker(p.url, { contentType: 'application/json' });
    await inv.invoke('f', 't', '', { contentType: 'bad\nvalue' });
    await inv.invoke('f', 't', '');
    expect((await inv.invoke('f', '', '')).callId).toBeUndefined();
    expect(p.seen.map((s) => s.headers['content-type'])).toEqual([
      'application/json',
      'application/json',
      'application/json',
    ]);
    expect(p.seen[2]?.headers['x-topic']).toBeUndefined();
    const bare = invoker(p.url, { sendTopic: false });
    await bare.invoke('f', 't', '');
    expect(p.seen[3]?.headers['content-type']).toBeUndefined();
    expect(p.seen[3]?.headers['x-topic']).toBeUndefined();
  });

  it('async: /async-function/, the callback URL (per call over config), 202 with its call id; no body kept', async () => {
    const p = await peer((_q, _b, res) => res.writeHead(202, { 'x-call-id': 'id9' }).end('ignored'));
    const inv = invoker(`${p.url}/`, { asyncInvocation: true, asyncCallbackUrl: 'http://cb/default' });
    expect(inv.asyncByDefault).toBe(true);
    const r = await inv.invoke('f', 't', 'x');
    expect(p.seen[0]?.url).toBe('/async-function/f');
    expect(p.seen[0]?.headers['x-callback-url']).toBe('http://cb/default');
    expect(r).toMatchObject({ status: 202, async: true, callId: 'id9' });
    expect(r.body.length).toBe(0);
    await inv.invoke('f', 't', 'x', { callbackUrl: 'http://cb/mine' });
    expect(p.seen[1]?.headers['x-callback-url']).toBe('http://cb/mine');
    await inv.invoke('f', 't', 'x', { callbackUrl: 'http://cb/\nbad' });
    expect(p.seen[2]?.headers['x-callback-url']).toBeUndefined();
    await inv.invoke('f', 't', 'x', { async: false });
    expect(p.seen[3]?.url).toBe('/function/f');
    expect(p.seen[3]?.headers['x-callback-url']).toBeUndefined();
    expect(invoker(p.url).asyncByDefault).toBe(false);
  });
});

describe('invoker: classification', () => {
  it('2xx ok; 404 not found; retryOn statuses retryable; async 5xx retryable, async 400 not', async () => {
    let status = 200;
    const p = await peer((_q, _b, res) => res.writeHead(status).end());
    const inv = invoker(p.url);
    const at = async (s: number, opts = {}) => {
      status = s;
      return (await inv.invoke('f', 't', '', opts)).error;
    };
    expect(await at(200)).toBeUndefined();
    expect(await at(204)).toBeUndefined();
    expect(await at(299)).toBeUndefined();
    expect(await at(300)).toMatchObject({ code: 'ERR_INVOKE_STATUS', status: 300, canRetry: false });
    expect(await at(404)).toMatchObject({
      code: 'ERR_FUNCTION_NOT_FOUND',
      status: 404,
      canRetry: false,
      message: 'function f not found (404)',
    });
    expect(await at(400)).toMatchObject({
      code: 'ERR_INVOKE_STATUS',
      status: 400,
      canRetry: false,
      message: 'function f answered 400',
    });
    for (const s of [408, 429, 502, 503, 504]) expect((await at(s))?.canRetry, String(s)).toBe(true);
    expect((await at(500))?.canRetry).toBe(false);
    expect((await at(500, { retryOn: new Set([500]) }))?.canRetry).toBe(true);
    expect((await at(503, { retryOn: new Set([500]) }))?.canRetry).toBe(false);
    expect((await at(500, { async: true }))?.canRetry).toBe(true);
    expect((await at(499, { async: true }))?.canRetry).toBe(false);
    expect((await at(400, { async: true }))?.canRetry).toBe(false);
    const custom = invoker(p.url, { retryOnStatus: [500] });
    status = 500;
    expect((await custom.invoke('f', 't', '')).error?.canRetry).toBe(true);
    status = 503;
    expect((await custom.invoke('f', 't', '')).error?.canRetry).toBe(false);
  });

  it('X-Connector-Outcome: dead-letter (any case) from the function: ERR_FUNCTION_REJECTED, not retried', async () => {
    let outcome = 'Dead-Letter';
    let status = 200;
    const p = await peer((_q, _b, res) => res.writeHead(status, { 'x-connector-outcome': outcome }).end());
    const inv = invoker(p.url);
    const r = await inv.invoke('f', 't', '');
    expect(r.status).toBe(200);
    expect(r.error).toMatchObject({ code: 'ERR_FUNCTION_REJECTED', status: 200, canRetry: false });
    expect(r.error?.message).toBe('function f asked for a dead letter (status 200)');
    status = 503;
    expect((await inv.invoke('f', 't', '')).error?.code).toBe('ERR_FUNCTION_REJECTED');
    outcome = 'retry';
    expect((await inv.invoke('f', 't', '')).error).toMatchObject({
      code: 'ERR_INVOKE_STATUS',
      canRetry: true,
    });
    status = 200;
    expect((await inv.invoke('f', 't', '')).error).toBeUndefined();
  });

  it('a per-call timeout overrides the configured one', async () => {
    const p = await peer(() => undefined); // never answers
    const inv = invoker(p.url, { timeout: 60_000 });
    const started = Date.now();
    const r = await inv.invoke('f', 't', '', { timeout: 300 });
    expect(r.error).toMatchObject({ code: 'ERR_TIMEOUT', message: 'invocation of f timed out after 300 ms' });
    expect(Date.now() - started).toBeLessThan(30_000);
    inv.destroy();
  });

  it('a 1xx before the answer is skipped', async () => {
    const p = await peer((_q, _b, res) => {
      res.writeProcessing();
      res.writeHead(201).end('done');
    });
    const r = await invoker(p.url).invoke('f', 't', '');
    expect(r.status).toBe(201);
    expect(Buffer.from(r.body).toString()).toBe('done');
  });

  it('network failure: ERR_NETWORK, retryable, status 0, never a rejection', async () => {
    const p = await peer();
    const url = p.url;
    for (const c of cleanups.splice(0)) await c(); // the peer is gone
    const r = await invoker(url).invoke('f', 't', '', { attempt: 2 });
    expect(r).toMatchObject({ status: 0, attempt: 2, final: true, async: false });
    expect(r.error).toMatchObject({ code: 'ERR_NETWORK', canRetry: true });
    expect(r.error?.message).toMatch(/^invocation of f failed: /);
  });

  it('the whole-request deadline: ERR_TIMEOUT (retryable) after `timeout` ms even while bytes trickle', async () => {
    const p = await peer((_q, _b, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const t = setInterval(() => res.write('.'), 50);
      res.on('close', () => clearInterval(t));
    });
    const started = Date.now();
    const r = await invoker(p.url, { timeout: 400 }).invoke('f', 't', '');
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(r.error).toMatchObject({
      code: 'ERR_TIMEOUT',
      canRetry: true,
      message: 'invocation of f timed out after 400 ms',
    });
    expect(r.duration).toBeGreaterThanOrEqual(380);
  });

  it('an aborted signal: ERR_ABORTED at once, before or during the request', async () => {
    const p = await peer(() => undefined); // never answers
    const inv = invoker(p.url);
    const ac = new AbortController();
    ac.abort(new Error('why'));
    const r = await inv.invoke('f', 't', '', { signal: ac.signal });
    expect(r.error).toMatchObject({ code: 'ERR_ABORTED', message: 'invocation of f aborted' });
    const ac2 = new AbortController();
    const pending = inv.invoke('f', 't', '', { signal: ac2.signal });
    await new Promise((res) => setTimeout(res, 50));
    ac2.abort();
    expect((await pending).error?.code).toBe('ERR_ABORTED');
    inv.destroy();
  });

  it('responses over maxResponseBytes fail with ERR_RESPONSE_TOO_LARGE, declared or streamed; at the limit they pass', async () => {
    let mode = 'declared';
    const p = await peer((_q, _b, res) => {
      if (mode === 'declared') res.writeHead(200, { 'content-length': '11' }).end('12345678901');
      else if (mode === 'chunked') {
        res.writeHead(200);
        res.write('123456');
        setTimeout(() => res.end('78901'), 10);
      } else res.writeHead(200, { 'content-length': '10' }).end('1234567890');
    });
    const inv = invoker(p.url, { maxResponseBytes: 10 });
    const big = await inv.invoke('f', 't', '');
    expect(big.error).toMatchObject({ code: 'ERR_RESPONSE_TOO_LARGE', canRetry: false });
    expect(big.error?.message).toBe('invocation of f: response of 11 bytes is over 10');
    mode = 'chunked';
    const streamed = await inv.invoke('f', 't', '');
    expect(streamed.error?.message).toBe('invocation of f: response body over 10 bytes');
    mode = 'exact';
    const ok = await inv.invoke('f', 't', '');
    expect(ok.error).toBeUndefined();
    expect(Buffer.from(ok.body).toString()).toBe('1234567890');
    mode = 'chunked';
    const asyncOk = await inv.invoke('f', 't', '', { async: true }); // async answers are not read: no limit
    expect(asyncOk.error).toBeUndefined();
  });

  it('a chunked body of several pieces is joined in order', async () => {
    const p = await peer((_q, _b, res) => {
      res.writeHead(200);
      res.write('ab');
      setTimeout(() => {
        res.write('cd');
        setTimeout(() => res.end('ef'), 10);
      }, 10);
    });
    const r = await invoker(p.url).invoke('f', 't', '');
    expect(Buffer.from(r.body).toString()).toBe('abcdef');
    expect(r.body.length).toBe(6);
  });
});

describe('invoker: /system', () => {
  it('GETs with basic auth and JSON accept; parses JSON, undefined for an empty or non-JSON body', async () => {
    let body = '[{"name":"f"}]';
    const p = await peer((_q, _b, res) => res.writeHead(200).end(body));
    const inv = invoker(`${p.url}/pre`, { credentials: { username: 'u', password: 'p' } });
    expect(await inv.system('/system/functions')).toEqual({ status: 200, json: [{ name: 'f' }] });
    expect(p.seen[0]?.method).toBe('GET');
    expect(p.seen[0]?.url).toBe('/pre/system/functions');
    expect(p.seen[0]?.headers.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
    expect(p.seen[0]?.headers.accept).toBe('application/json');
    expect(p.seen[0]?.headers['user-agent']).toBe('ua/1');
    body = '';
    expect(await inv.system('/x')).toEqual({ status: 200, json: undefined });
    body = 'not json';
    expect(await inv.system('/x')).toEqual({ status: 200, json: undefined });
    // Without credentials: no authorization header; function calls never carry it.
    await invoker(p.url).system('/y');
    expect(p.seen[3]?.headers.authorization).toBeUndefined();
    await inv.invoke('f', 't', '');
    expect(p.seen[4]?.headers.authorization).toBeUndefined();
  });

  it('a pooled connection the gateway drops as the GET goes out is retried once on a new one; twice fails', async () => {
    // The first request that comes on a connection already used once is reset (as when the gateway closed it idle
    // just then). GET until a reuse has happened (a pool may open a second connection before it reuses one).
    let resets = 1;
    const served = new Map<object, number>();
    const p = await peer((req, _b, res) => {
      const n = (served.get(req.socket) ?? 0) + 1;
      served.set(req.socket, n);
      if (n === 2 && resets > 0) {
        resets--;
        return void req.socket.resetAndDestroy();
      }
      res.writeHead(200).end('[]');
    });
    const inv = invoker(p.url);
    let calls = 0;
    while (resets > 0 && calls < 20) {
      expect(await inv.system('/system/functions')).toEqual({ status: 200, json: [] });
      calls++;
    }
    expect(resets).toBe(0);
    expect(p.seen).toHaveLength(calls + 1); // every GET answered; the reset one was sent once more
    // A gateway that drops every try: one retry only, then the error.
    const dropping = await peer((req) => void req.socket.resetAndDestroy());
    await expect(invoker(dropping.url).system('/s')).rejects.toMatchObject({
      code: 'ERR_GATEWAY_UNREACHABLE',
      message: expect.stringMatching(/^gateway: GET \/s failed: /),
    });
    expect(dropping.seen).toHaveLength(2);
  });

  it('failures become GatewayErrors (retryable): unreachable, timeout, too large', async () => {
    const slow = await peer(() => undefined);
    await expect(invoker(slow.url, { systemTimeout: 200 }).system('/s')).rejects.toMatchObject({
      code: 'ERR_TIMEOUT',
      canRetry: true,
      message: 'gateway: GET /s timed out after 200 ms',
    });
    const big = await peer((_q, _b, res) => res.end('x'.repeat(100)));
    const e = await invoker(big.url, { maxSystemBytes: 10 })
      .system('/s')
      .catch((err: unknown) => err);
    expect(e).toBeInstanceOf(GatewayError);
    expect(e).toMatchObject({ code: 'ERR_RESPONSE_TOO_LARGE', canRetry: true });
    const gone = await peer();
    const url = gone.url;
    for (const c of cleanups.splice(0)) await c();
    await expect(invoker(url).system('/s')).rejects.toMatchObject({
      code: 'ERR_GATEWAY_UNREACHABLE',
      canRetry: true,
    });
  });

  it('system timeout defaults to the invocation timeout, at most 30 s', async () => {
    const slow = await peer(() => undefined);
    const started = Date.now();
    await expect(invoker(slow.url, { timeout: 300 }).system('/s')).rejects.toMatchObject({
      code: 'ERR_TIMEOUT',
    });
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe('invoker: options checked at start', () => {
  it('refuses bad URLs, header values and limits with ConfigError', () => {
    const ok = { gatewayUrl: 'http://g:8080', userAgent: 'ua', connectorName: 'c', timeout: 1000 };
    const bad = (o: Partial<InvokerOptions>) => () => createInvoker({ ...ok, ...o });
    expect(bad({ gatewayUrl: 'not a url' })).toThrow(
      'invalid gatewayUrl="not a url": expected a URL like http://gateway:8080',
    );
    expect(bad({ gatewayUrl: 'ftp://g' })).toThrow('expected an http or https URL');
    expect(bad({ gatewayUrl: 'http://u:secret@g/' })).toThrow(ConfigError);
    expect(bad({ gatewayUrl: 'http://u@g/' })).toThrow('credentials removed');
    expect(bad({ gatewayUrl: 'http://:pw@g/' })).toThrow('credentials removed');
    expect(bad({ userAgent: '' })).toThrow('invalid userAgent="": expected printable ASCII');
    expect(bad({ connectorName: 'a\nb' })).toThrow('connectorName');
    expect(bad({ contentType: 'é' })).toThrow('contentType');
    expect(bad({ asyncCallbackUrl: 'nope' })).toThrow('invalid asyncCallbackUrl="nope": expected a URL');
    expect(bad({ asyncCallbackUrl: 'http://cb/ x' })).not.toThrow();
    expect(bad({ asyncCallbackUrl: 'http://cb/\u00e9' })).toThrow('printable ASCII'); // a URL, but not a header value
    expect(bad({ timeout: 0 })).toThrow('invalid timeout=0: expected a positive number');
    expect(bad({ timeout: Number.NaN })).toThrow('timeout');
    expect(bad({ systemTimeout: -1 })).toThrow('systemTimeout');
    expect(bad({ maxResponseBytes: Number.POSITIVE_INFINITY })).toThrow('maxResponseBytes');
    expect(bad({ connections: 0 })).toThrow('invalid connections=0: expected a whole number of at least 1');
    expect(bad({ connections: 1.5 })).toThrow('connections');
    expect(bad({ connections: 1 })).not.toThrow();
    expect(bad({ gatewayUrl: 'https://g' })).not.toThrow();
    expect(bad({ contentType: undefined, systemTimeout: 1, maxResponseBytes: 1 })).not.toThrow();
  });
});

describe('invoker: survivors of the first mutation run', () => {
  it('durations are elapsed time; a success has no error or callId keys', async () => {
    const p = await peer();
    const inv = invoker(p.url);
    const r = await inv.invoke('f', 't', '');
    expect(r.duration).toBeGreaterThan(0);
    expect(r.duration).toBeLessThan(60_000);
    expect('error' in r).toBe(false);
    expect('callId' in r).toBe(false);
    const gone = await peer();
    const url = gone.url;
    for (const c of cleanups.splice(0)) await c();
    const f = await invoker(url).invoke('f', 't', '');
    expect(f.duration).toBeGreaterThan(0);
    expect(f.duration).toBeLessThan(60_000);
  });

  it('response headers: names lower-cased, repeats joined, names of Object.prototype kept as plain headers', async () => {
    const p = await peer((_q, _b, res) => {
      res.setHeader('X-Twice', ['1', '2']);
      res.setHeader('__proto__', 'p');
      res.setHeader('constructor', 'c');
      res.end('ok');
    });
    const r = await invoker(p.url).invoke('f', 't', '');
    expect(r.headers['x-twice']).toBe('1, 2');
    expect(Object.getPrototypeOf(r.headers)).toBe(Object.prototype);
    expect(Object.hasOwn(r.headers, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(r.headers, '__proto__')?.value).toBe('p');
    expect(r.headers.constructor).toBe('c');
    expect({ ...r }.headers['x-twice']).toBe('1, 2');
  });

  it('a short systemTimeout does not cut invocations short (each call has its own deadline)', async () => {
    // 1.2 s: well past the 100 ms systemTimeout, whether the wait is for the head or for the rest of the body.
    let mode = 'headers';
    const p = await peer((_q, _b, res) => {
      if (mode === 'headers') setTimeout(() => res.end('late'), 1200);
      else {
        res.writeHead(200).write('la');
        setTimeout(() => res.end('te'), 1200);
      }
    });
    const inv = invoker(p.url, { timeout: 10_000, systemTimeout: 100 });
    for (const m of ['headers', 'body']) {
      mode = m;
      const r = await inv.invoke('f', 't', '');
      expect(r.error).toBeUndefined();
      expect(Buffer.from(r.body).toString()).toBe('late');
    }
  });

  it('an async answer declaring a body over the limit is fine (its body is not read)', async () => {
    const p = await peer((_q, _b, res) => res.writeHead(202, { 'content-length': '20' }).end('x'.repeat(20)));
    const r = await invoker(p.url, { maxResponseBytes: 10 }).invoke('f', 't', '', { async: true });
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(202);
  });

  it('a signal that is not aborted changes nothing; an abort keeps its reason as the cause', async () => {
    const p = await peer();
    const inv = invoker(p.url);
    expect((await inv.invoke('f', 't', '', { signal: new AbortController().signal })).error).toBeUndefined();
    const ac = new AbortController();
    const why = new Error('why');
    ac.abort(why);
    expect((await inv.invoke('f', 't', '', { signal: ac.signal })).error?.cause).toBe(why);
  });

  it('after close() or destroy(), an invocation fails as ERR_ABORTED ("aborted"), never rejects', async () => {
    const p = await peer();
    const a = invoker(p.url);
    await a.invoke('f', 't', '');
    await a.close();
    await a.close(); // twice is fine
    const r = await a.invoke('f', 't', '');
    expect(r.error).toMatchObject({ code: 'ERR_ABORTED', message: 'invocation of f aborted' });
    const b = invoker(p.url);
    b.destroy();
    b.destroy();
    await b.close();
    expect((await b.invoke('f', 't', '')).error?.code).toBe('ERR_ABORTED');
  });

  it('logs a request body only with printRequestBody, and refused headers at most 10 times', async () => {
    const p = await peer();
    const lines: { level: string; obj: Record<string, unknown>; msg: unknown }[] = [];
    const at = (level: string) => (obj: unknown, msg?: unknown) => {
      lines.push({ level, obj: obj as Record<string, unknown>, msg });
    };
    const logger = {
      trace: at('trace'),
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      fatal: at('fatal'),
      child: () => logger,
    };
    const quiet = invoker(p.url, { logger });
    await quiet.invoke('f', 't', 'secret');
    expect(lines).toEqual([]);
    const loud = invoker(p.url, { logger, printRequestBody: true });
    await loud.invoke('f', 't', 'héllo');
    expect(lines).toEqual([
      { level: 'info', obj: { function: 'f', topic: 't', body: 'héllo' }, msg: 'request body' },
    ]);
    lines.length = 0;
    for (let i = 0; i < 12; i++) await quiet.invoke('f', 't', '', { headers: { host: 'x', ok: 'y' } });
    expect(lines).toHaveLength(10);
    expect(lines[0]).toEqual({
      level: 'debug',
      obj: { function: 'f', topic: 't', refused: ['host'], oversize: [] },
      msg: 'message headers not forwarded (header policy)',
    });
    await quiet.invoke('f', 't', '', { headers: { ok: 'y' } });
    expect(lines).toHaveLength(10);
  });

  it('option errors name the setting', () => {
    const ok = { gatewayUrl: 'http://g:8080', userAgent: 'ua', connectorName: 'c', timeout: 1000 };
    const err = (o: Partial<InvokerOptions>) => {
      try {
        createInvoker({ ...ok, ...o });
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('no error');
    };
    expect(err({ gatewayUrl: 'ftp://g' })).toMatchObject({ setting: 'gatewayUrl' });
    const cred = err({ gatewayUrl: 'http://u:hunter2@g:1/p' });
    expect(cred).toMatchObject({ setting: 'gatewayUrl' });
    expect(cred.message).toMatch(
      /^invalid gatewayUrl="http:\/\/g:1\/p" \(credentials removed\): expected no user:password/,
    );
    expect(cred.message).not.toContain('hunter2');
    expect(err({ asyncCallbackUrl: 'http://cb/\u00e9' })).toMatchObject({ setting: 'asyncCallbackUrl' });
  });
});

describe('invoker: gateway tokens (survivors of the second mutation run)', () => {
  /** A peer that is also the token endpoint: access tokens a1, a2…; function tokens f1, f2… per exchange. */
  async function tokenPeer(o: { refuse?: Set<string>; failExchange?: () => boolean } = {}) {
    const refuse = o.refuse ?? new Set<string>();
    const issued: Record<string, string>[] = [];
    const p = await peer((req, body, res) => {
      if ((req.url ?? '').startsWith('/oauth/token') || (req.url ?? '').startsWith('/idp/')) {
        const form = Object.fromEntries(new URLSearchParams(body.toString()));
        if (o.failExchange?.()) return void res.writeHead(400).end('{"error":"invalid_grant"}');
        issued.push(form);
        const token = `${form['scope'] === 'function' ? 'f' : 'a'}${issued.length}`;
        return void res.end(JSON.stringify({ access_token: token, expires_in: 3600 }));
      }
      const auth = req.headers.authorization ?? '';
      res.writeHead(refuse.has(auth) ? 401 : 200).end('{}');
    });
    return { ...p, issued, refuse };
  }
  const calls = (p: { seen: Seen[] }, prefix: string) =>
    p.seen.filter((s) => s.url.startsWith(prefix)).map((s) => s.headers.authorization);

  it('/system: a 401 with a token gets a fresh token and exactly one repeat; a 401 with basic auth is not repeated', async () => {
    const p = await tokenPeer({ refuse: new Set(['Bearer a1']) });
    const inv = invoker(p.url, { gatewayTokenFile: tokenFile('id-1') });
    expect(await inv.system('/system/functions')).toEqual({ status: 200, json: {} });
    expect(calls(p, '/system/')).toEqual(['Bearer a1', 'Bearer a2']);
    // Refused again with the fresh token: the 401 is the answer, no third call.
    p.refuse.add('Bearer a2');
    p.refuse.add('Bearer a3');
    expect((await inv.system('/system/functions')).status).toBe(401);
    expect(calls(p, '/system/')).toEqual(['Bearer a1', 'Bearer a2', 'Bearer a2', 'Bearer a3']);
    const basic = await peer((_q, _b, res) => res.writeHead(401).end());
    const b = invoker(basic.url, { credentials: { username: 'u', password: 'p' } });
    expect((await b.system('/system/functions')).status).toBe(401);
    expect(basic.seen).toHaveLength(1);
    const none = await peer((_q, _b, res) => res.writeHead(401).end());
    expect((await invoker(none.url).system('/system/functions')).status).toBe(401);
    expect(none.seen).toHaveLength(1);
  });

  it('function auth: a token per function (default namespace openfaas-fn), one repeat after a 401, none without it', async () => {
    const p = await tokenPeer();
    const inv = invoker(p.url, { gatewayTokenFile: tokenFile('id-1'), gatewayFunctionAuth: true });
    expect((await inv.invoke('fn.ns', 't', '')).status).toBe(200);
    expect((await inv.invoke('bare', 't', '')).status).toBe(200);
    expect(p.issued.map((f) => f['audience'])).toEqual([undefined, 'ns:fn', 'openfaas-fn:bare']);
    expect(calls(p, '/function/')).toEqual(['Bearer f2', 'Bearer f3']);
    // The function's token is refused: a new one, the call repeated once with it.
    p.refuse.add('Bearer f2');
    const r = await inv.invoke('fn.ns', 't', '');
    expect(r.status).toBe(200);
    expect(r.error).toBeUndefined();
    expect(calls(p, '/function/fn.ns')).toEqual(['Bearer f2', 'Bearer f2', 'Bearer f4']);
    // Without function auth the token file is for /system only.
    const plain = await tokenPeer();
    await invoker(plain.url, { gatewayTokenFile: tokenFile('id-2') }).invoke('fn.ns', 't', '');
    expect(calls(plain, '/function/')).toEqual([undefined]);
  });

  it('function auth: no token to be had is a retryable ERR_NETWORK naming the invocation, with the cause', async () => {
    const p = await tokenPeer({ failExchange: () => true });
    const inv = invoker(p.url, { gatewayTokenFile: tokenFile('id-1'), gatewayFunctionAuth: true });
    const r = await inv.invoke('fn.ns', 't', '');
    expect(r.error).toMatchObject({ code: 'ERR_NETWORK', canRetry: true });
    expect(r.error?.message).toMatch(/^invocation of fn\.ns: no function token: gateway token exchange at /);
    expect(r.error?.cause).toBeInstanceOf(GatewayError);
    expect(calls(p, '/function/')).toEqual([]);
  });

  it('a token endpoint on another origin: POSTed there with its path and query, the form as the body', async () => {
    const idp = await tokenPeer();
    const gw = await tokenPeer();
    const inv = invoker(gw.url, {
      gatewayTokenFile: tokenFile('id-1'),
      gatewayTokenExchange: `${idp.url}/idp/token?tenant=x`,
    });
    expect((await inv.system('/system/functions')).status).toBe(200);
    expect(idp.seen.map((s) => `${s.method} ${s.url}`)).toEqual(['POST /idp/token?tenant=x']);
    expect(idp.seen[0]?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(idp.seen[0]?.headers['user-agent']).toBe('ua/1');
    expect(idp.issued[0]).toMatchObject({ subject_token: 'id-1' });
    expect(calls(gw, '/system/')).toEqual(['Bearer a1']);
    expect(gw.issued).toEqual([]);
  });
});

describe('invoker: survivors of the second mutation run', () => {
  it('a settled invocation leaves no listener on the caller signal (one signal serves every call of a run)', async () => {
    const p = await peer();
    const inv = invoker(p.url);
    const ac = new AbortController();
    for (let i = 0; i < 3; i++)
      expect((await inv.invoke('f', 't', '', { signal: ac.signal })).status).toBe(200);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    const gone = await peer();
    const url = gone.url;
    for (const c of cleanups.splice(0)) await c();
    const failed = await invoker(url).invoke('f', 't', '', { signal: ac.signal });
    expect(failed.error?.code).toBe('ERR_NETWORK');
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('a network failure keeps the transport error as its cause', async () => {
    const gone = await peer();
    const url = gone.url;
    for (const c of cleanups.splice(0)) await c();
    const r = await invoker(url).invoke('f', 't', '');
    expect(r.error?.code).toBe('ERR_NETWORK');
    expect((r.error?.cause as NodeJS.ErrnoException | undefined)?.code).toBe('ECONNREFUSED');
  });

  it('a request that failed while queued for a connection is never sent', async () => {
    const release: (() => void)[] = [];
    const p = await peer((_q, _b, res) => {
      release.push(() => res.end('ok'));
    });
    const inv = invoker(p.url, { connections: 1 });
    const first = inv.invoke('first', 't', '');
    await waitFor(() => p.seen.length === 1);
    const ac = new AbortController();
    const queued = inv.invoke('queued', 't', '', { signal: ac.signal });
    const timedOut = inv.invoke('timed-out', 't', '', { timeout: 50 });
    ac.abort();
    expect((await queued).error?.code).toBe('ERR_ABORTED');
    expect((await timedOut).error?.code).toBe('ERR_TIMEOUT');
    const last = inv.invoke('last', 't', '');
    release.shift()?.();
    expect((await first).status).toBe(200);
    // `last` was queued after the two: once it arrives, they would have arrived before it.
    await waitFor(() => p.seen.length === 2);
    release.shift()?.();
    expect((await last).status).toBe(200);
    expect(p.seen.map((s) => s.url)).toEqual(['/function/first', '/function/last']);
  });

  it('cloudEvents=structured: the invocation carries the JSON envelope, not the bare body', async () => {
    const p = await peer();
    await invoker(p.url, { cloudEvents: 'structured' }).invoke('f', 'orders', 'hi');
    expect(p.seen[0]?.headers['content-type']).toBe('application/cloudevents+json; charset=utf-8');
    const e = JSON.parse(p.seen[0]?.body ?? '{}') as Record<string, string>;
    expect(e['specversion']).toBe('1.0');
    expect(e['data'] ?? Buffer.from(e['data_base64'] ?? '', 'base64').toString()).toBe('hi');
  });

  it('gateway_tls_insecure is said loudly at creation; credentials become secrets that logs redact', () => {
    const lines: { obj: unknown; msg: unknown }[] = [];
    const warn = (obj: unknown, msg?: unknown) => void lines.push({ obj, msg });
    const logger = { trace() {}, debug() {}, info() {}, warn, error() {}, fatal() {}, child: () => logger };
    invoker('https://127.0.0.1:1', { gatewayTlsInsecure: true, logger });
    expect(lines).toEqual([
      {
        obj: { gateway: 'https://127.0.0.1:1', setting: 'gateway_tls_insecure' },
        msg: expect.stringMatching(/^gateway TLS certificate NOT verified/),
      },
    ]);
    invoker('https://127.0.0.1:1', { logger });
    expect(lines).toHaveLength(1);
    invoker('http://127.0.0.1:1', { credentials: { username: 'inv-user', password: 'inv-pw-5f3a' } });
    const basic = Buffer.from('inv-user:inv-pw-5f3a').toString('base64');
    expect(redactSecrets(`a inv-pw-5f3a b ${basic} c`)).not.toMatch(/inv-pw-5f3a|aW52/);
  });

  it('refused addresses: the message names the function, the attempt is kept; byte bodies go out as they are', async () => {
    const p = await peer();
    const inv = invoker(p.url);
    const r = await inv.invoke('..', 't', '', { attempt: 3 });
    expect(r.error?.message).toBe('function ".." has no valid address');
    expect(r.attempt).toBe(3);
    await inv.invoke('f', 't', new Uint8Array([0x31, 0x32, 0x33]));
    expect(p.seen[0]?.body).toBe('123');
  });

  it('logs nothing about message headers when every one was forwarded', async () => {
    const p = await peer();
    const lines: unknown[] = [];
    const at = (obj: unknown, msg?: unknown) => void lines.push({ obj, msg });
    const logger = { trace: at, debug: at, info: at, warn: at, error: at, fatal: at, child: () => logger };
    await invoker(p.url, { logger }).invoke('f', 't', '', { headers: { ok: 'y' } });
    expect(p.seen[0]?.headers.ok).toBe('y');
    expect(lines).toEqual([]);
  });

  it('destroy() fails the invocations in flight at once (ERR_ABORTED, not their deadline)', async () => {
    const p = await peer(() => undefined); // never answers
    const inv = invoker(p.url, { timeout: 20_000 });
    const pending = inv.invoke('f', 't', '');
    await waitFor(() => p.seen.length === 1);
    const started = Date.now();
    inv.destroy();
    const r = await pending;
    expect(r.error?.code).toBe('ERR_ABORTED');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('a per-call timeout over the configured one holds: no pool-wide timeout cuts the call short', async () => {
    // The function answers after 2.5 s: over upstream_timeout (300 ms), within its connector.dev/timeout (5 s).
    const p = await peer((_q, _b, res) => void setTimeout(() => res.end('late'), 2500));
    const r = await invoker(p.url, { timeout: 300 }).invoke('f', 't', '', { timeout: 5000 });
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(200);
    // The configured deadline still applies without a per-call one.
    const d = await invoker(p.url, { timeout: 300 }).invoke('f', 't', '');
    expect(d.error).toMatchObject({ code: 'ERR_TIMEOUT', canRetry: true });
  });

  it('/system: a refused token exchange keeps its status; an unreachable token endpoint is named', async () => {
    const refusing = await peer((_q, _b, res) => res.writeHead(400).end('{"error":"invalid_grant"}'));
    const e = await invoker(refusing.url, { gatewayTokenFile: tokenFile('id-1') })
      .system('/system/functions')
      .catch((err: unknown) => err);
    expect(e).toBeInstanceOf(GatewayError);
    expect(e).toMatchObject({ code: 'ERR_GATEWAY_STATUS', status: 400, canRetry: true });
    expect((e as Error).message).toMatch(
      /^gateway: gateway token exchange at .* answered 400 \(invalid_grant\)$/,
    );
    const gone = await peer();
    const url = gone.url;
    await cleanups.pop()?.();
    const p = await peer();
    const u = await invoker(p.url, {
      gatewayTokenFile: tokenFile('id-1'),
      gatewayTokenExchange: `${url}/idp/token`,
    })
      .system('/system/functions')
      .catch((err: unknown) => err);
    expect(u).toMatchObject({ code: 'ERR_GATEWAY_UNREACHABLE', canRetry: true });
    expect((u as Error).message).toBe(
      `gateway: POST ${url}/idp/token failed: connect ECONNREFUSED ${url.replace('http://', '')}`,
    );
  });

  it('option errors name the cloudEvents settings', () => {
    expect(() => invoker('http://g:1', { cloudEvents: 'json' as never })).toThrow(
      expect.objectContaining({ setting: 'cloudEvents' }),
    );
    expect(() => invoker('http://g:1', { cloudEventsType: 'a\nb' })).toThrow(
      expect.objectContaining({ setting: 'cloudEventsType' }),
    );
  });
});

describe('invoker: an attempt span (tracing SDK registered)', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  beforeAll(() => provider.register());
  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  it('a call with trace context: one CLIENT span, ended with the result, whose id the function receives', async () => {
    const p = await peer();
    const inv = invoker(p.url);
    const r = await inv.invoke('f', 't', '', { traceContext: context.active() });
    expect(r.status).toBe(200);
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.kind)).toEqual([SpanKind.CLIENT]);
    const traceparent = String(p.seen[0]?.headers.traceparent);
    expect(traceparent.split('-')[2]).toBe(spans[0]?.spanContext().spanId);
    // Without trace context: no span, no header.
    exporter.reset();
    expect((await inv.invoke('f', 't', '')).status).toBe(200);
    expect(exporter.getFinishedSpans()).toEqual([]);
    expect(p.seen[1]?.headers.traceparent).toBeUndefined();
  });
});

describe('invoker: https with a private CA', () => {
  it('gateway_ca_file is trusted for the gateway and for a token endpoint on another origin (added to the public CAs)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'inv-tls-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const certs = testCertificates(dir);
    const seen: string[] = [];
    const serve = async () => {
      const server = createHttpsServer(
        { cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey) },
        (req, res) => {
          seen.push(`${req.method} ${req.url}`);
          if (req.url === '/idp/token') res.end('{"access_token":"a1","expires_in":3600}');
          else res.end('{}');
        },
      );
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      cleanups.push(() => {
        server.closeAllConnections();
        return new Promise((r) => server.close(r));
      });
      return (server.address() as AddressInfo).port;
    };
    const gw = await serve();
    const idp = await serve();
    const inv = invoker(`https://127.0.0.1:${gw}`, {
      gatewayCaFile: certs.ca,
      gatewayTokenFile: tokenFile('id-1'),
      gatewayTokenExchange: `https://localhost:${idp}/idp/token`,
    });
    expect(await inv.system('/system/functions')).toEqual({ status: 200, json: {} });
    expect((await inv.invoke('f', 't', '')).status).toBe(200);
    expect(seen).toEqual(['POST /idp/token', 'GET /system/functions', 'POST /function/f']);
  });
});
