import { GATEWAY_TEST_SECRET, refusedConnectorTexts } from '@connector/testing';
import { describe, expect, it } from 'vitest';
import { natsOptionsFromEnv, natsSource } from '../src/index.js';
import { cleanup } from './helpers/connector.js';
import { startNatsServer } from './helpers/nats.js';

// A known secret through every path the connector reads one (password or token from a file, user:password in
// nats_url read from a file, the gateway's basic auth from secret_mount_path), all refused: no log line at any
// level, no readiness text, no /readyz or /metrics body may carry it.
const SECRET = 'nats-Known-Secret-5e2f';

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
    cleanup.add(() => s.stop());
    const { text, connector } = await refusedConnectorTexts(
      {
        name: 'nats-connector',
        files: { secret: `${SECRET}\n`, url: `${s.url.replace('nats://', `nats://u:${SECRET}@`)}\n` },
        env: (path) => ({ mode: 'core', subjects: 'sec.>', reconnect_wait: '50ms', ...natsEnv(s.url, path) }),
        source: (env) => natsSource(natsOptionsFromEnv(env)),
        refused: /authorization violation/i,
      },
      (undo) => cleanup.add(async () => undo()),
    );
    expect(text).toMatch(/"level":(10|20)/); // trace and debug lines were written too
    for (const secret of [SECRET, GATEWAY_TEST_SECRET]) expect(text).not.toContain(secret);
    expect(connector.readiness().join('\n')).toMatch(/not connected/);
  });
});
