import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  type Connector,
  createLogger,
  type Env,
  type Logger,
  type Source,
  startConnectorFromEnv,
} from '@connector/core';
import { startGateway } from './gateway.js';
import { waitFor } from './wait.js';

/** A logger made by core's own `createLogger` (every redaction included) whose JSON lines are kept in memory. */
export interface CapturedLogger extends Logger {
  /** Every line written so far, as written. */
  text(): string;
}

/** Core's real logger at `trace` (every level written), writing into memory: to check what reaches a log line. */
export function capturedLogger(): CapturedLogger {
  let text = '';
  const destination = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  const logger = createLogger({ level: 'trace', destination, pretty: false });
  return Object.assign(logger, { text: () => text });
}

/** Files in a new temp folder (`name` → content); `remove()` deletes the folder. */
export function secretFiles(files: Record<string, string>): {
  dir: string;
  path(name: string): string;
  remove(): void;
} {
  const dir = mkdtempSync(join(tmpdir(), 'connector-secrets-'));
  for (const [name, content] of Object.entries(files))
    writeFileSync(join(dir, name), content, { mode: 0o600 });
  return {
    dir,
    path: (name) => join(dir, name),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Everything a running connector tells the outside where a secret could leak: its log lines (every level), its
 * readiness reasons, and the bodies of `/readyz` and `/metrics` (when its HTTP endpoint runs).
 */
export async function connectorTexts(connector: Connector, logs: CapturedLogger): Promise<string> {
  const parts = [logs.text(), ...connector.readiness()];
  if (connector.httpUrl !== undefined) {
    for (const path of ['/readyz', '/metrics', '/healthz'])
      parts.push(await fetch(connector.httpUrl + path).then((r) => r.text()));
  }
  return parts.join('\n');
}

/** The gateway basic-auth password `refusedConnectorTexts` puts in `secret_mount_path` (the gateway refuses it). */
export const GATEWAY_TEST_SECRET = 'gw-Basic-Secret-2b8e';

/** One run of `refusedConnectorTexts`: a connector from env whose broker credentials the broker refuses. */
export interface RefusedRun {
  /** The app's name, e.g. `mqtt-connector`. */
  name: string;
  /** Secret files (name → content) next to the gateway's basic-auth files; `env` gets their paths. */
  files: Record<string, string>;
  /** The source's settings, given the path of each file in `files`. */
  env(path: (name: string) => string): Env;
  /** The source, from the whole env (e.g. `(env) => mqttSource(mqttOptionsFromEnv(env))`). */
  source(env: Env): Source;
  /** A log line that shows the broker refused (e.g. `/ACCESS_REFUSED/`). */
  refused: RegExp;
}

/**
 * Start a connector from env with `run`'s secret files and a test gateway that refuses its basic auth (password
 * `GATEWAY_TEST_SECRET`, read from `secret_mount_path`); wait until the broker's refusal and the gateway's 401 are
 * logged; return everything the connector told the outside (`connectorTexts`, logs at trace level included).
 * `cleanup` receives what to undo after the test. The caller asserts that no secret is in the text.
 */
export async function refusedConnectorTexts(
  run: RefusedRun,
  cleanup: (undo: () => unknown) => void,
): Promise<{ text: string; connector: Connector }> {
  const files = secretFiles({
    ...run.files,
    'basic-auth-user': 'admin',
    'basic-auth-password': `${GATEWAY_TEST_SECRET}\n`,
  });
  cleanup(() => files.remove());
  const g = await startGateway({ credentials: { username: 'admin', password: 'another-one' } });
  cleanup(() => g.close());
  const logs = capturedLogger();
  const connector = await startConnectorFromEnv({
    name: run.name,
    env: {
      gateway_url: g.url,
      basic_auth: 'true',
      secret_mount_path: files.dir,
      http_port: '0',
      http_host: '127.0.0.1',
      ...run.env(files.path),
    },
    source: run.source,
    signals: false,
    logger: logs,
  });
  cleanup(() => connector.stop());
  await waitFor(() => run.refused.test(logs.text()) && /401/.test(logs.text()), {
    timeout: 20_000,
    message: () => `${connector.readiness().join('\n')}\n${logs.text().slice(-2000)}`,
  });
  return { text: await connectorTexts(connector, logs), connector };
}
