import { GATEWAY_TEST_SECRET, refusedConnectorTexts } from '@connector/testing';
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
    const { text, connector } = await refusedConnectorTexts(
      {
        name: 'rabbitmq-connector',
        files: { secret: `${SECRET}\n`, url: `${withPassword}\n` },
        env: (path) => ({ queue: `secrets-${process.pid}`, reconnect_delay: '50ms', ...brokerEnv(path) }),
        source: (env) => rabbitmqSource(rabbitmqOptionsFromEnv(env)),
        refused: /ACCESS_REFUSED/i,
      },
      (undo) => cleanups.push(undo),
    );
    expect(text).toMatch(/"level":(10|20)/); // trace and debug lines were written too
    for (const secret of [SECRET, GATEWAY_TEST_SECRET]) expect(text).not.toContain(secret);
    expect(connector.readiness().join('\n')).toMatch(/source rabbitmq not connected/);
  });
});
