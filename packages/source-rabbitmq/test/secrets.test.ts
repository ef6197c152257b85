import { startConnectorFromEnv } from '@connector/core';
import { capturedLogger, connectorTexts, secretFiles, startGateway, waitFor } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { rabbitmqOptionsFromEnv, rabbitmqSource } from '../src/index.js';

// A known secret through every path the connector reads one (password_file, a password in rabbitmq_url, the URL
// from rabbitmq_url_file, the gateway's basic auth from secret_mount_path), all refused: no log line at any level,
// no readiness text, no /readyz or /metrics body may carry it. Runs against the machine's RabbitMQ (guest/guest).
const url = (password?: string) => {
  const u = new URL(process.env['RABBITMQ_URL'] ?? 'amqp://127.0.0.1:5672');
  u.username = password === undefined ? '' : 'guest';
  u.password = password ?? '';
  return u.href;
};
const SECRET = 'amqp-Known-Secret-3d9b';
const GATEWAY_SECRET = 'gw-Basic-Secret-8f1e';
const RABBITMQ = url();
const withPassword = url(SECRET);

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('secrets never reach a log line or a readiness text (RabbitMQ)', () => {
  it.each([
    [
      'password_file',
      (f: (n: string) => string) => ({
        rabbitmq_url: RABBITMQ,
        username: 'guest',
        password_file: f('secret'),
      }),
    ],
    ['user:password in rabbitmq_url', () => ({ rabbitmq_url: withPassword })],
    ['rabbitmq_url_file', (f: (n: string) => string) => ({ rabbitmq_url_file: f('url') })],
  ])('%s, refused by the broker and the gateway', async (_what, brokerEnv) => {
    const files = secretFiles({
      secret: `${SECRET}\n`,
      url: `${withPassword}\n`,
      'basic-auth-user': 'admin',
      'basic-auth-password': `${GATEWAY_SECRET}\n`,
    });
    cleanups.push(() => files.remove());
    const g = await startGateway({ credentials: { username: 'admin', password: 'another-one' } });
    cleanups.push(() => g.close());
    const logs = capturedLogger();
    const c = await startConnectorFromEnv({
      name: 'rabbitmq-connector',
      env: {
        gateway_url: g.url,
        basic_auth: 'true',
        secret_mount_path: files.dir,
        http_port: '0',
        http_host: '127.0.0.1',
        queue: `secrets-${process.pid}`,
        reconnect_delay: '50ms',
        ...brokerEnv(files.path),
      },
      source: (env) => rabbitmqSource(rabbitmqOptionsFromEnv(env)),
      signals: false,
      logger: logs,
    });
    cleanups.push(() => c.stop());
    await waitFor(() => /ACCESS_REFUSED/i.test(logs.text()) && /401/.test(logs.text()), {
      timeout: 15_000,
      message: () => logs.text().slice(-2000),
    });
    const text = await connectorTexts(c, logs);
    expect(text).toMatch(/"level":(10|20)/); // trace and debug lines were written too
    for (const secret of [SECRET, GATEWAY_SECRET]) expect(text).not.toContain(secret);
    expect(c.readiness().join('\n')).toMatch(/source rabbitmq not connected/);
  });
});
