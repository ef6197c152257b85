import { createServer, type Server } from 'node:net';
import { ConfigError, noopLogger } from '@connector/core';
import { memoryLogger, startGateway, type TestGateway, waitFor } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { main, startDemo, startupFailure } from '../src/index.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function gateway(...args: Parameters<typeof startGateway>): Promise<TestGateway> {
  const g = await startGateway(...args);
  cleanups.push(() => g.close());
  return g;
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

describe('main(env)', () => {
  it('runs the cron connector against a gateway, and stop() stops it', async () => {
    const g = await gateway({
      functions: [
        { name: 'job', annotations: { topic: 'cron-function', schedule: '*/1 * * * * *' } },
        { name: 'other', annotations: { topic: 'orders' } },
      ],
    });
    const first = await main(
      { gateway_url: g.url, http_port: '0', connector_name: 'first' },
      { signals: false, logger: noopLogger },
    );
    cleanups.push(() => first.stop());
    const calls = await g.waitForInvocations(2, { fn: 'job', timeout: 5000 });
    expect(calls.map((c) => [c.headers['x-connector'], c.headers['x-topic'], c.body.byteLength])).toEqual([
      ['first', 'cron-function', 0],
      ['first', 'cron-function', 0],
    ]);
    expect(first.ready()).toBe(true);
    await first.stop();
    expect(first.ready()).toBe(false);
    expect(first.inFlight()).toBe(0);
    const before = g.invocations('job').length;
    // A second connector on the same gateway: its two runs span a couple of schedule ticks, during which the
    // stopped one (had it kept a timer) would have invoked `job` too.
    const second = await main(
      { gateway_url: g.url, http_port: '0', connector_name: 'second' },
      { signals: false, logger: noopLogger },
    );
    cleanups.push(() => second.stop());
    await g.waitForInvocations(before + 2, { fn: 'job', timeout: 5000 });
    await second.stop();
    const after = g.invocations('job').slice(before);
    expect(after.length).toBeGreaterThanOrEqual(2);
    expect(after.filter((c) => c.headers['x-connector'] !== 'second')).toEqual([]);
    expect(g.invocations('other')).toHaveLength(0);
  });

  it('runs interval mode from env', async () => {
    const g = await gateway({ functions: [{ name: 'beat', annotations: { topic: 'heartbeat' } }] });
    const connector = await main(
      {
        gateway_url: g.url,
        http_port: '0',
        mode: 'interval',
        interval: '20ms',
        topic: 'heartbeat',
        body: 'ping',
      },
      { signals: false, logger: noopLogger },
    );
    cleanups.push(() => connector.stop());
    const calls = await g.waitForInvocations(3, { fn: 'beat' });
    expect(calls.slice(0, 3).map((c) => [c.body.toString(), c.headers['x-topic']])).toEqual([
      ['ping', 'heartbeat'],
      ['ping', 'heartbeat'],
      ['ping', 'heartbeat'],
    ]);
  });
});

describe('start-up failures', () => {
  it.each([
    [
      { upstream_timeout: '30' },
      'upstream_timeout',
      'timer-connector: invalid upstream_timeout="30": expected a duration like 30s, 1m30s or 500ms\n',
    ],
    [
      { gateway_url: 'nope' },
      'gateway_url',
      'timer-connector: invalid gateway_url="nope": expected a URL like http://host:port\n',
    ],
    [
      { mode: 'interval', topic: 't' },
      'interval',
      'timer-connector: invalid interval="": expected a duration like 10s (required with mode=interval)\n',
    ],
    [
      { mode: 'weekly' },
      'mode',
      expect.stringMatching(/^timer-connector: invalid mode="weekly": expected .*cron.*interval.*\n$/),
    ],
  ])('%j: one line naming %s, exit code 2', async (env, setting, line) => {
    const err = await failure(main(env, { signals: false, logger: noopLogger }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ code: 'ERR_CONFIG', setting });
    const out = startupFailure(err);
    expect(out).toEqual({ line, exitCode: 2 });
    expect(out.line.split('\n')).toHaveLength(2); // the text, then the final newline
  });

  it('other errors: one line without a stack trace, exit code 1', () => {
    const err = new Error('listen EADDRINUSE: address already in use 0.0.0.0:8081\n  more detail');
    expect(startupFailure(err)).toEqual({
      line: 'timer-connector: listen EADDRINUSE: address already in use 0.0.0.0:8081 more detail\n',
      exitCode: 1,
    });
    expect(startupFailure(Object.assign(new Error(''), { code: 'ECONNRESET' }))).toEqual({
      line: 'timer-connector: ECONNRESET\n',
      exitCode: 1,
    });
    expect(startupFailure('boom').line).toBe('timer-connector: boom\n');
  });
});

describe('pnpm start demo', () => {
  it('starts a gateway with hello every 2 s, prints its responses, and stop() closes both', async () => {
    const logger = memoryLogger();
    const printed: string[] = [];
    const { connector, gateway: g } = await startDemo({
      env: { http_port: '0' },
      port: 0,
      signals: false,
      logger,
      print: (line) => printed.push(line),
    });
    cleanups.push(() => connector.stop());
    expect(g?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(printed).toEqual([
      `demo gateway at ${g?.url} with function hello (topic: cron-function, every 2 s); set gateway_url to use your own gateway\n`,
    ]);
    const [call] = (await g?.waitForInvocations(1, { fn: 'hello', timeout: 5000 })) ?? [];
    expect(call?.status).toBe(200);
    const result = () =>
      logger.lines.find((l) => l.msg === 'invocation result' && (l.obj as { body?: string }).body);
    await waitFor(() => result() !== undefined, { message: 'a printed response' });
    expect(result()?.obj).toMatchObject({
      function: 'hello.openfaas-fn',
      status: 200,
      body: expect.stringMatching(/^Hello from the demo function at \d{4}-/),
    });
    await connector.stop();
    await expect(fetch(`${g?.url}/system/functions`)).rejects.toThrow();
  });

  it('takes an ephemeral port when demo_gateway_port is busy, and says so', async () => {
    const busy: Server = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise((r) => busy.close(r)));
    const port = (busy.address() as { port: number }).port;
    const printed: string[] = [];
    const { connector, gateway: g } = await startDemo({
      env: { http_port: '0', demo_gateway_port: String(port) },
      signals: false,
      logger: noopLogger,
      print: (line) => printed.push(line),
    });
    cleanups.push(() => connector.stop());
    expect(g?.url).not.toBe(`http://127.0.0.1:${port}`);
    expect(printed[0]).toContain(`(port ${port} was busy)`);
    await g?.waitForInvocations(1, { fn: 'hello', timeout: 5000 });
  });

  it('refuses a bad demo_gateway_port with one line', async () => {
    const err = await failure(
      startDemo({ env: { demo_gateway_port: 'http' }, signals: false, logger: noopLogger }),
    );
    expect(startupFailure(err)).toEqual({
      line: 'timer-connector: invalid demo_gateway_port="http": expected an integer from 0 to 65535\n',
      exitCode: 2,
    });
  });

  it('with gateway_url set, runs against that gateway and starts none of its own', async () => {
    const g = await gateway({
      functions: [{ name: 'mine', annotations: { topic: 'cron-function', schedule: '* * * * * *' } }],
    });
    const printed: string[] = [];
    const started = await startDemo({
      env: { gateway_url: g.url, http_port: '0' },
      signals: false,
      logger: noopLogger,
      print: (line) => printed.push(line),
    });
    cleanups.push(() => started.connector.stop());
    expect(started.gateway).toBeUndefined();
    await g.waitForInvocations(1, { fn: 'mine', timeout: 5000 });
    expect(printed).toEqual([]);
  });
});
