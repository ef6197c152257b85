import { describe, expect, it } from 'vitest';
import { createConnector } from './connector.js';
import { createController } from './controller.js';
import type { Source } from './source.js';
import type { Logger } from './types.js';

interface Line {
  level: string;
  obj: Record<string, unknown>;
  msg: string | undefined;
}

function memoryLogger(): Logger & { lines: Line[] } {
  const lines: Line[] = [];
  const make = (): Logger => {
    const at = (level: string) => (obj: object | string, msg?: string) =>
      void lines.push(
        typeof obj === 'string'
          ? { level, obj: {}, msg: obj }
          : { level, obj: obj as Record<string, unknown>, msg },
      );
    return {
      trace: at('trace'),
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      fatal: at('fatal'),
      child: () => make(),
    };
  };
  return Object.assign(make(), { lines });
}

async function waitFor(cond: () => boolean, what: string, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('connection failures are logged as one readable line, rate-limited', () => {
  it('a source that cannot connect: message and code, no stack above debug, repeats at 1, 2, 4, 8', async () => {
    let attempts = 0;
    const down: Source = {
      name: 'mqtt',
      async start() {
        attempts++;
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1883'), { code: 'ECONNREFUSED' });
      },
      stop: async () => undefined,
    };
    const logger = memoryLogger();
    const controller = createController({ gatewayUrl: 'http://127.0.0.1:1', rebuildInterval: 3_600_000 });
    const c = createConnector({ controller, source: down, logger, restartDelay: { min: 1, max: 1 } });
    await c.start();
    await waitFor(() => attempts >= 9, '9 start attempts');
    await c.stop();

    const above = logger.lines.filter((l) => l.level !== 'debug' && l.level !== 'trace');
    const text = JSON.stringify(above);
    expect(text).not.toMatch(/\n\s+at |"stack"|"err"/); // no stack, no serialised error object
    const failures = above.filter((l) => l.msg?.startsWith('source mqtt failed to start'));
    expect(failures[0]?.msg).toBe('source mqtt failed to start: connect ECONNREFUSED 127.0.0.1:1883');
    expect(failures[0]?.obj['code']).toBe('ECONNREFUSED');
    expect(failures.map((l) => l.obj['repeated'])).toEqual(
      [undefined, 2, 4, 8, 16, 32].slice(0, failures.length),
    );
    expect(failures.length).toBeLessThan(attempts);
    expect(above.some((l) => l.msg === 'connector started')).toBe(false);
    expect(above.some((l) => l.msg === 'connector started; source not connected, retrying')).toBe(true);
    // the stack is still there for whoever turns on debug
    expect(logger.lines.some((l) => l.level === 'debug' && l.obj['err'] instanceof Error)).toBe(true);
  });

  it('"connector started" when the source started', async () => {
    const logger = memoryLogger();
    const controller = createController({ gatewayUrl: 'http://127.0.0.1:1', rebuildInterval: 3_600_000 });
    const up: Source = { name: 'timer', start: async () => undefined, stop: async () => undefined };
    const c = createConnector({ controller, source: up, logger });
    await c.start();
    await c.stop();
    expect(logger.lines.some((l) => l.msg === 'connector started')).toBe(true);
    expect(logger.lines.some((l) => l.msg?.includes('source not connected'))).toBe(false);
  });

  it('the lifecycle in the log: failed starts with their back-off, the start after them, the endpoint, the stop', async () => {
    let attempts = 0;
    const flaky: Source = {
      name: 'flaky',
      async start() {
        if (++attempts <= 2) throw new Error(`refused ${attempts}`);
      },
      stop: async () => undefined,
    };
    const logger = memoryLogger();
    const controller = createController({ gatewayUrl: 'http://127.0.0.1:1', rebuildInterval: 3_600_000 });
    const c = createConnector({
      controller,
      source: flaky,
      logger,
      restartDelay: { min: 10, max: 15 },
      http: { port: 0, host: '127.0.0.1' },
    });
    await c.start();
    await waitFor(() => attempts === 3, 'the third start');
    await waitFor(
      () => logger.lines.some((l) => l.msg === 'source flaky started after 2 failed attempts'),
      'the start after failures',
    );
    await c.stop();
    const at = (msg: string) => logger.lines.find((l) => l.msg === msg && l.level !== 'debug');
    expect(at('source flaky failed to start: refused 1')?.obj).toEqual({ retryInMs: 10 });
    expect(at('source flaky failed to start: refused 2')?.obj).toEqual({ retryInMs: 15 });
    expect(at('source flaky failed to start: refused 1')?.level).toBe('error');
    expect(at('health and metrics endpoint listening')?.obj).toEqual({ url: c.httpUrl });
    expect(at('connector stopped')?.obj).toEqual({ graceful: true });
    expect(logger.lines.filter((l) => l.msg?.startsWith('source flaky started after'))).toHaveLength(1);
    // The default back-off starts at 1 s.
    const slow = memoryLogger();
    const d = createConnector({
      controller: createController({ gatewayUrl: 'http://127.0.0.1:1', rebuildInterval: 3_600_000 }),
      source: { ...flaky, start: async () => Promise.reject(new Error('no')) },
      logger: slow,
    });
    await d.start();
    await d.kill();
    expect(
      slow.lines.find((l) => l.msg === 'source flaky failed to start: no' && l.level !== 'debug')?.obj,
    ).toEqual({
      retryInMs: 1000,
    });
    expect(slow.lines.find((l) => l.msg === 'connector stopped')?.obj).toEqual({ graceful: false });
  });
});
