import { startConnectorFromEnv } from '@connector/core';
import { capturedLogger, connectorTexts, secretFiles, waitFor } from '@connector/testing';
import { describe, expect, it } from 'vitest';
import { natsOptionsFromEnv, natsSource } from '../src/index.js';
import { cleanups, gateway } from './helpers/connector.js';
import { startNatsServer } from './helpers/nats.js';

// A known secret through every path the connector reads one (password or token from a file, user:password in
// nats_url read from a file, the gateway's basic auth from secret_mount_path), all refused: no log line at any
// level, no readiness text, no /readyz or /metrics body may carry it.
const SECRET = 'nats-Known-Secret-5e2f';
const GATEWAY_SECRET = 'gw-Basic-Secret-4a7c';

describe('secrets never reach a log line or a readiness text (NATS)', () => {
  it.each([
    [
      'password_file',
      (_url: string, f: (n: string) => string) => ({ nats_url: _url, user: 'u', password_file: f('secret') }),
    ],
    ['token_file', (_url: string, f: (n: string) => string) => ({ nats_url: _url, token_file: f('secret') })],
    [
      'nats_url_file with user:password',
      (_url: string, f: (n: string) => string) => ({ nats_url_file: f('url') }),
    ],
  ])('%s, refused by the server and the gateway', async (_what, natsEnv) => {
    const s = await startNatsServer({
      config: 'authorization { users = [ { user: u, password: "right-one" } ] }',
    });
    cleanups.push(() => s.stop());
    const files = secretFiles({
      secret: `${SECRET}\n`,
      url: `${s.url.replace('nats://', `nats://u:${SECRET}@`)}\n`,
      'basic-auth-user': 'admin',
      'basic-auth-password': `${GATEWAY_SECRET}\n`,
    });
    cleanups.push(async () => files.remove());
    const g = await gateway({ credentials: { username: 'admin', password: 'another-one' } });
    const logs = capturedLogger();
    const c = await startConnectorFromEnv({
      name: 'nats-connector',
      env: {
        gateway_url: g.url,
        basic_auth: 'true',
        secret_mount_path: files.dir,
        http_port: '0',
        http_host: '127.0.0.1',
        mode: 'core',
        subjects: 'sec.>',
        reconnect_wait: '50ms',
        ...natsEnv(s.url, files.path),
      },
      source: (env) => natsSource(natsOptionsFromEnv(env)),
      signals: false,
      logger: logs,
    });
    cleanups.push(() => c.stop());
    await waitFor(() => /authorization violation/i.test(logs.text()) && /401/.test(logs.text()), {
      timeout: 15_000,
      message: () => logs.text().slice(-2000),
    });
    const text = await connectorTexts(c, logs);
    expect(text).toMatch(/"level":(10|20)/); // trace and debug lines were written too
    for (const secret of [SECRET, GATEWAY_SECRET]) expect(text).not.toContain(secret);
    expect(c.readiness().join('\n')).toMatch(/not connected/);
  });
});
