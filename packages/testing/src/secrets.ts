import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type Connector, createLogger, type Logger } from '@connector/core';

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
