import { type Logger, noopLogger } from '@connector/core';
import { afterEach, describe, expect, it } from 'vitest';
import { mqttSource } from '../src/index.js';
import { testContext } from './helpers/context.js';
import { MOSQUITTO, reportMissingMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Line {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}

/** A logger that records every line (fields and message). */
function recorder(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const at =
    (level: string) =>
    (...args: unknown[]) => {
      const msg = String(args.at(-1));
      const fields =
        args.length > 1 && typeof args[0] === 'object' ? (args[0] as Record<string, unknown>) : {};
      lines.push({ level, fields, msg });
    };
  const logger: Logger = {
    ...noopLogger,
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
  return { logger, lines };
}

if (MOSQUITTO === undefined) {
  reportMissingMosquitto('the connection failure tests');
} else {
  describe('connection failures against mosquitto', () => {
    it('logs a repeated reconnect failure once (one line: what, where, why), counts it, and says when it is back', async () => {
      const b = await startMosquitto();
      cleanups.push(() => b.stop());
      const { logger, lines } = recorder();
      const ctx = testContext({ logger });
      const s = mqttSource({
        broker: b.url,
        topics: ['x'],
        clientId: `conn-${process.pid}`,
        reconnectDelay: { min: 5, max: 10 },
      });
      await s.start(ctx);
      cleanups.push(() => s.stop());
      await b.halt();
      await waitFor(() => Number(s.health?.().detail?.['failedAttempts'] ?? 0) >= 5, {
        message: () => JSON.stringify(s.health?.()),
      });
      const failures = lines.filter((l) => l.level === 'warn' && /ECONNREFUSED/.test(l.msg));
      expect(failures).toHaveLength(1);
      const line = failures[0] as Line;
      expect(line.msg).toMatch(
        new RegExp(
          `^MQTT connection to mqtt://127\\.0\\.0\\.1:${b.port}/? \\(client id conn-\\d+\\): .*ECONNREFUSED`,
        ),
      );
      expect(line.msg).not.toContain('\n');
      expect(line.fields).toMatchObject({ code: 'ERR_BROKER', canRetry: true, brokerCode: 'ECONNREFUSED' });
      expect(line.fields['err']).toBeUndefined(); // no stack at warn; it is in the debug line
      expect(lines.filter((l) => l.level === 'debug' && /again/.test(l.msg)).length).toBeGreaterThanOrEqual(
        4,
      );
      expect(lines.filter((l) => l.level === 'warn' && /connection closed/.test(l.msg))).toHaveLength(1);
      expect(s.health?.()).toMatchObject({
        connected: false,
        lastError: expect.stringMatching(/ECONNREFUSED/),
      });

      await b.start();
      await waitFor(() => s.health?.().connected === true);
      const back = lines.find((l) => /back after failed attempts/.test(l.msg));
      expect(back?.level).toBe('info');
      expect(Number(back?.fields['failedAttempts'])).toBeGreaterThanOrEqual(5);
      expect(s.health?.().lastError).toBeUndefined();
      expect(s.health?.().detail?.['failedAttempts']).toBeUndefined();
    });
  });
}
