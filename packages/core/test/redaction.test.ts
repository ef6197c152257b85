import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Connector,
  connectorCli,
  createConnector,
  createController,
  createLogger,
  EnvReader,
  REDACTED,
  type Source,
} from '../src/index.js';
import { waitFor } from './helpers.js';

// Errors from a broker or a gateway may quote a secret (a URL with its password, a token in a message): whatever
// path they take out — a log line at any level, readiness, /readyz, the CLI's start-up line — it is redacted.
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SECRET = new EnvReader({ broker_token: 'core-Known-Token-91ab' }).secret('broker_token') as string;
const URL_PASSWORD = 'url-Only-Password-55cd';

const quoted = `connect amqp://bob:${URL_PASSWORD}@127.0.0.1:5672 refused token ${SECRET}`;
/** A source whose every start fails with an error that quotes both secrets, and whose health repeats it. */
const leaky: Source = {
  name: 'leaky',
  async start() {
    throw new Error(quoted);
  },
  async stop() {},
  health: () => ({ connected: false, lastError: quoted }),
};

describe('redaction of secrets quoted by broker and gateway errors', () => {
  it('log lines at every level, readiness and /readyz never carry them', async () => {
    let logged = '';
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        logged += chunk.toString();
        done();
      },
    });
    const logger = createLogger({ level: 'trace', destination });
    const controller = createController({ gatewayUrl: 'http://127.0.0.1:1', rebuildInterval: 60_000 });
    const c: Connector = createConnector({
      controller,
      source: leaky,
      logger,
      http: { port: 0, host: '127.0.0.1' },
      restartDelay: { min: 10, max: 20 },
    });
    cleanups.push(() => c.stop());
    await c.start();
    await waitFor(() => (logged.match(/failed to start/g) ?? []).length >= 2);
    const readyz = await fetch(`${c.httpUrl}/readyz`).then((r) => r.text());
    const all = [logged, readyz, ...c.readiness()].join('\n');
    expect(logged).toMatch(/"level":20/); // the debug line with the error and its stack was written
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain(URL_PASSWORD);
    expect(readyz).toContain(`refused token ${REDACTED}`);
    expect(c.readiness().join('\n')).toContain(`amqp://bob:${REDACTED}@127.0.0.1:5672`);
  });

  it("the CLI's one start-up line never carries them", async () => {
    let stderr = '';
    await connectorCli({
      name: 'x-connector',
      settings: [],
      argv: [],
      start: () => Promise.reject(new Error(`cannot connect to nats://u:${URL_PASSWORD}@h with ${SECRET}`)),
      io: { stderr: (t) => void (stderr += t), stdout: () => undefined, exit: () => undefined },
    });
    expect(stderr).toBe(`x-connector: cannot connect to nats://u:${REDACTED}@h with ${REDACTED}\n`);
  });
});
