import { memoryLogger, startGateway, type TestGateway } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type Controller, createController, type InvokeResult } from '../src/index.js';
import { freePort, startReceiver, waitFor } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function gateway(...args: Parameters<typeof startGateway>): Promise<TestGateway> {
  const g = await startGateway(...args);
  cleanups.push(() => g.close());
  return g;
}

function controller(options: Parameters<typeof createController>[0]): Controller {
  const c = createController(options);
  cleanups.push(() => c.stop());
  return c;
}

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

describe('topic map discovery', () => {
  it('maps functions of every namespace as name.namespace and routes topics', async () => {
    const g = await gateway({
      functions: [
        { name: 'pay', annotations: { topic: 'payments, refunds,' } },
        { name: 'audit', namespace: 'staging-fn', annotations: { topic: 'payments' } },
        { name: 'quiet' },
      ],
    });
    const c = controller({ gatewayUrl: g.url });
    await c.start();
    expect(c.synced()).toBe(true);
    expect(c.topics()).toEqual(['payments', 'refunds']);
    expect(
      c
        .match('payments')
        .map((f) => f.address)
        .sort(),
    ).toEqual(['audit.staging-fn', 'pay.openfaas-fn']);
    expect(c.match('refunds').map((f) => f.address)).toEqual(['pay.openfaas-fn']);
    expect(
      c
        .functions()
        .map((f) => f.address)
        .sort(),
    ).toEqual(['audit.staging-fn', 'pay.openfaas-fn', 'quiet.openfaas-fn']);
    expect(c.status()).toMatchObject({ synced: true, functions: 3, topics: 2, consecutiveFailures: 0 });
  });

  it('with `namespace`, maps and invokes only that namespace', async () => {
    const g = await gateway({
      functions: [
        { name: 'a', annotations: { topic: 't' } },
        { name: 'b', namespace: 'staging-fn', annotations: { topic: 't' } },
      ],
    });
    const c = controller({ gatewayUrl: g.url, namespace: 'staging-fn' });
    await c.start();
    expect(c.match('t').map((f) => f.address)).toEqual(['b.staging-fn']);
    expect(g.requests.some((r) => r.path === '/system/namespaces')).toBe(false);
    const results = await c.invoke('t', 'x');
    expect(results.map((r) => r.function)).toEqual(['b.staging-fn']);
    expect(g.invocations('a.openfaas-fn')).toHaveLength(0);
    const outside = await c.invokeFunction('a.openfaas-fn', 'x');
    expect(outside.error?.code).toBe('ERR_FUNCTION_NOT_FOUND');
    expect(g.invocations('a.openfaas-fn')).toHaveLength(0);
    const byName = await c.invokeFunction('b', 'y');
    expect(byName).toMatchObject({ function: 'b.staging-fn', status: 200 });
  });

  it('addresses functions by bare name when the provider has no namespaces (404)', async () => {
    const g = await gateway({
      namespaces: false,
      functions: [{ name: 'echo', annotations: { topic: 'in' } }],
    });
    const c = controller({ gatewayUrl: g.url });
    await c.start();
    expect(c.match('in').map((f) => f.address)).toEqual(['echo']);
    const [r] = await c.invoke('in', 'hi');
    expect(r?.status).toBe(200);
    expect(g.invocations()[0]?.path).toBe('/function/echo');
  });

  it.each([
    [',', 'a,b, ,c,,', ['a', 'b', 'c']],
    [';', 'a;b,c; ', ['a', 'b,c']],
    ['|', '|||', []],
  ])('splits the annotation on %j', async (delimiter, annotation, topics) => {
    const g = await gateway({ functions: [{ name: 'f', annotations: { topic: annotation } }] });
    const c = controller({ gatewayUrl: g.url, topicDelimiter: delimiter });
    await c.start();
    expect(c.topics()).toEqual(topics);
  });

  it('rebuilds on its interval, picking up added, removed and re-annotated functions', async () => {
    const g = await gateway({ functions: [{ name: 'a', annotations: { topic: 'one' } }] });
    const c = controller({ gatewayUrl: g.url, rebuildInterval: 100 });
    let changes = 0;
    c.onChange(() => changes++);
    await c.start();
    expect(c.topics()).toEqual(['one']);
    g.addFunction({ name: 'b', annotations: { topic: 'two' } });
    await waitFor(() => c.topics().includes('two'), { message: 'added function' });
    g.removeFunction('a');
    await waitFor(() => !c.topics().includes('one'), { message: 'removed function' });
    g.updateFunction('b', { annotations: { topic: 'three' } });
    await waitFor(() => c.topics().join() === 'three', { message: 're-annotated function' });
    expect(changes).toBeGreaterThanOrEqual(4);
  });

  it('survives a gateway that is down at start and comes back, keeping the last good map on failures', async () => {
    const port = await freePort();
    const c = controller({ gatewayUrl: `http://127.0.0.1:${port}`, rebuildInterval: 200 });
    await c.start(); // must not throw
    expect(c.synced()).toBe(false);
    expect(c.status().lastError).toBeTruthy();
    const g = await gateway({ port, functions: [{ name: 'late', annotations: { topic: 't' } }] });
    await c.ready(AbortSignal.timeout(10_000));
    expect(c.match('t').map((f) => f.address)).toEqual(['late.openfaas-fn']);
    g.fault('system', { status: 503 });
    await waitFor(() => c.status().consecutiveFailures > 0, { message: 'a failed rebuild' });
    expect(c.match('t').map((f) => f.address)).toEqual(['late.openfaas-fn']);
    await expect(c.refresh()).rejects.toMatchObject({ code: 'ERR_GATEWAY_STATUS', status: 503 });
    g.fault('system', null);
    await waitFor(() => c.status().consecutiveFailures === 0, { message: 'recovery' });
  });

  it('supports MQTT wildcards in annotations', async () => {
    const g = await gateway({
      functions: [
        { name: 'temps', annotations: { topic: 'sensors/+/temp' } },
        { name: 'all', annotations: { topic: 'sensors/#' } },
      ],
    });
    const c = controller({ gatewayUrl: g.url, topicMatcher: 'mqtt' });
    await c.start();
    const results = await c.invoke('sensors/kitchen/temp', '21.5');
    expect(results.map((r) => r.function).sort()).toEqual(['all.openfaas-fn', 'temps.openfaas-fn']);
    expect(c.match('sensors/kitchen/humidity').map((f) => f.name)).toEqual(['all']);
    expect(c.match('$SYS/x')).toEqual([]);
  });

  it('accepts a custom matcher function', async () => {
    const g = await gateway({ functions: [{ name: 'p', annotations: { topic: 'orders.' } }] });
    const c = controller({ gatewayUrl: g.url, topicMatcher: (pattern, topic) => topic.startsWith(pattern) });
    await c.start();
    expect(c.match('orders.eu').map((f) => f.name)).toEqual(['p']);
    expect(c.match('refunds')).toEqual([]);
  });
});

describe('basic auth', () => {
  const credentials = { username: 'admin', password: 'hunter2' };

  it('is sent to /system only, never to functions, and never logged', async () => {
    const g = await gateway({ credentials, functions: [{ name: 'f', annotations: { topic: 't' } }] });
    const logger = memoryLogger();
    const c = controller({ gatewayUrl: g.url, credentials, logger, printResponse: true, printSync: true });
    await c.start();
    await c.invoke('t', 'x');
    const system = g.requests.filter((r) => r.path.startsWith('/system'));
    expect(system.length).toBeGreaterThan(0);
    for (const r of system)
      expect(r.headers['authorization']).toBe(`Basic ${Buffer.from('admin:hunter2').toString('base64')}`);
    expect(g.invocations()).toHaveLength(1);
    expect(g.invocations()[0]?.headers['authorization']).toBeUndefined();
    expect(JSON.stringify(logger.lines)).not.toContain('hunter2');
  });

  it('without credentials the sync fails with 401 and says so', async () => {
    const g = await gateway({ credentials, functions: [{ name: 'f', annotations: { topic: 't' } }] });
    const c = controller({ gatewayUrl: g.url });
    await c.start();
    expect(c.synced()).toBe(false);
    expect(c.status().lastError).toMatch(/401/);
  });
});

describe('invoking', () => {
  it('sync: sends the body as is with the connector headers and returns the function response', async () => {
    const g = await gateway({
      functions: [
        {
          name: 'up',
          annotations: { topic: 't' },
          handler: (req) => ({
            status: 201,
            body: req.body.toString().toUpperCase(),
            headers: { 'x-fn': 'yes' },
          }),
        },
      ],
    });
    const c = controller({
      gatewayUrl: g.url,
      connectorName: 'test-connector',
      userAgent: 'acme/test-connector',
      contentType: 'application/json',
    });
    await c.start();
    const body = new Uint8Array([104, 105, 0, 255]);
    const [r] = (await c.invoke('t', body, {
      headers: { traceparent: '00-abc-def-01', 'X-Topic': 'spoofed', 'X-Connector': 'spoofed' },
    })) as [InvokeResult];
    expect(r).toMatchObject({
      topic: 't',
      function: 'up.openfaas-fn',
      status: 201,
      async: false,
      attempt: 1,
      final: true,
    });
    expect(r.error).toBeUndefined();
    expect(r.headers['x-fn']).toBe('yes');
    expect(r.callId).toBeTruthy();
    expect(r.duration).toBeGreaterThan(0);
    const req = g.invocations('up.openfaas-fn')[0]!;
    expect([...req.body]).toEqual([...body]);
    expect(req.headers['x-topic']).toBe('t');
    expect(req.headers['x-connector']).toBe('test-connector');
    expect(req.headers['user-agent']).toBe('acme/test-connector');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['traceparent']).toBe('00-abc-def-01');
    expect(req.method).toBe('POST');
  });

  it('per-call options override content type and add headers; sendTopic=false drops X-Topic', async () => {
    const g = await gateway({ functions: [{ name: 'f', annotations: { topic: 't' } }] });
    const c = controller({ gatewayUrl: g.url, contentType: 'text/plain', sendTopic: false });
    await c.start();
    await c.invoke('t', '{}', { contentType: 'application/json', headers: { 'X-Extra': '1' } });
    const req = g.invocations()[0]!;
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['x-extra']).toBe('1');
    expect(req.headers['x-topic']).toBeUndefined();
    expect(req.headers['user-agent']).toBe('connector/connector');
  });

  it('async: 202 with the gateway call id, callback URL from config or per call', async () => {
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const g = await gateway({
      functions: [{ name: 'slow', annotations: { topic: 't' }, handler: () => ({ body: 'done' }) }],
    });
    const c = controller({ gatewayUrl: g.url, asyncInvocation: true, asyncCallbackUrl: receiver.url });
    await c.start();
    const [r] = (await c.invoke('t', 'job')) as [InvokeResult];
    expect(r).toMatchObject({ status: 202, async: true, function: 'slow.openfaas-fn' });
    expect(r.error).toBeUndefined();
    expect(r.callId).toMatch(/[0-9a-f-]{36}/);
    expect(r.body.byteLength).toBe(0);
    expect(g.invocations()[0]?.path).toBe('/async-function/slow.openfaas-fn');
    expect(g.invocations()[0]?.headers['x-callback-url']).toBe(receiver.url);
    await waitFor(() => receiver.received.length === 1, { message: 'callback' });
    expect(receiver.received[0]?.body).toBe('done');
    expect(receiver.received[0]?.headers['x-call-id']).toBe(r.callId);
    expect(receiver.received[0]?.headers['x-function-status']).toBe('200');

    const other = `${receiver.url}?per-call=1`;
    await c.invoke('t', 'job2', { callbackUrl: other });
    expect(g.invocations()[1]?.headers['x-callback-url']).toBe(other);
    const sync = await c.invokeFunction('slow', 'now', { async: false });
    expect(text(sync.body)).toBe('done');
  });

  it('reports errors with a code, the topic and the function', async () => {
    const g = await gateway({
      functions: [
        { name: 'bad', annotations: { topic: 't' }, handler: () => ({ status: 500, body: 'boom' }) },
      ],
    });
    const c = controller({ gatewayUrl: g.url, upstreamTimeout: 300 });
    await c.start();
    const [r] = (await c.invoke('t', 'x')) as [InvokeResult];
    expect(r).toMatchObject({ status: 500, topic: 't', function: 'bad.openfaas-fn' });
    expect(r.error?.code).toBe('ERR_INVOKE_STATUS');
    expect(text(r.body)).toBe('boom');
    const missing = await c.invokeFunction('ghost', 'x');
    expect(missing.status).toBe(404);
    expect(missing.error?.code).toBe('ERR_FUNCTION_NOT_FOUND');
    g.fault('bad.openfaas-fn', { hang: true });
    const [slow] = (await c.invoke('t', 'x')) as [InvokeResult];
    expect(slow.error?.code).toBe('ERR_TIMEOUT');
    g.fault('bad.openfaas-fn', { drop: true });
    const [dropped] = (await c.invoke('t', 'x')) as [InvokeResult];
    expect(dropped.error?.code).toBe('ERR_NETWORK');
    expect(dropped.status).toBe(0);
    const nothing = await c.invoke('unknown-topic', 'x');
    expect(nothing).toEqual([]);
  });
});

describe('subscribers', () => {
  it('fan out every result; a throwing subscriber does not stop the others', async () => {
    const g = await gateway({
      functions: [
        { name: 'a', annotations: { topic: 't' } },
        { name: 'b', annotations: { topic: 't' } },
      ],
    });
    const logger = memoryLogger();
    const c = controller({ gatewayUrl: g.url, logger });
    await c.start();
    const first: string[] = [];
    const second: string[] = [];
    c.subscribe(() => {
      throw new Error('bad subscriber');
    });
    c.subscribe({ response: (r) => first.push(r.function) });
    const off = c.subscribe((r) => second.push(r.function));
    await c.invoke('t', '1');
    off();
    await c.invoke('t', '2');
    await c.invokeFunction('a', '3');
    expect(first.sort()).toEqual([
      'a.openfaas-fn',
      'a.openfaas-fn',
      'a.openfaas-fn',
      'b.openfaas-fn',
      'b.openfaas-fn',
    ]);
    expect(second.sort()).toEqual(['a.openfaas-fn', 'b.openfaas-fn']);
    expect(logger.lines.filter((l) => l.level === 'error')).toHaveLength(5);
  });

  it('the response printer logs results, bodies only when asked', async () => {
    const g = await gateway({
      functions: [{ name: 'a', annotations: { topic: 't' }, handler: () => ({ body: 'pong' }) }],
    });
    const quiet = memoryLogger();
    const c1 = controller({ gatewayUrl: g.url, logger: quiet, printResponse: true });
    await c1.start();
    await c1.invoke('t', 'ping');
    const line = quiet.lines.find((l) => l.msg === 'invocation result');
    expect(line?.obj).toMatchObject({ topic: 't', function: 'a.openfaas-fn', status: 200, bytes: 4 });
    expect(JSON.stringify(quiet.lines)).not.toContain('pong');
    const loud = memoryLogger();
    const c2 = controller({
      gatewayUrl: g.url,
      logger: loud,
      printResponse: true,
      printResponseBody: true,
      printRequestBody: true,
    });
    await c2.start();
    await c2.invoke('t', 'ping');
    expect(JSON.stringify(loud.lines)).toContain('pong');
    expect(JSON.stringify(loud.lines)).toContain('ping');
  });
});

describe('options validation', () => {
  it.each([
    [{ gatewayUrl: 'nope' }, 'gatewayUrl'],
    [{ gatewayUrl: 'ftp://x' }, 'gatewayUrl'],
    [{ gatewayUrl: 'http://x', upstreamTimeout: 0 }, 'upstreamTimeout'],
    [{ gatewayUrl: 'http://x', rebuildInterval: -1 }, 'rebuildInterval'],
    [{ gatewayUrl: 'http://x', topicDelimiter: '' }, 'topicDelimiter'],
    [{ gatewayUrl: 'http://x', asyncCallbackUrl: '::' }, 'asyncCallbackUrl'],
    [{ gatewayUrl: 'http://x', topicMatcher: 'regex' as 'exact' }, 'topicMatcher'],
  ])('%j fails naming %s', (opts, setting) => {
    expect(() => createController(opts)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', setting }));
  });
});
