import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { EnvReader } from './config.js';
import { ConfigError } from './errors.js';
import { createLogger } from './logger.js';
import { forgetSecret, REDACTED, redactSecrets, redactUrl, registerSecret } from './secrets.js';

const dir = mkdtempSync(join(tmpdir(), 'secrets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('EnvReader.secret: one rule for every secret setting', () => {
  it('reads the value from env, or from the file <name>_file names (a trailing newline dropped)', () => {
    expect(new EnvReader({ mqtt_password: 'from-env-1' }).secret('mqtt_password')).toBe('from-env-1');
    const path = file('pw', 'from-file-1\n');
    expect(new EnvReader({ mqtt_password_file: path }).secret('mqtt_password')).toBe('from-file-1');
    expect(new EnvReader({ mqtt_password_file: file('pw2', ' sp aces \r\n') }).secret('mqtt_password')).toBe(
      ' sp aces ',
    );
    expect(new EnvReader({}).secret('mqtt_password')).toBeUndefined();
  });

  it('both set is one ConfigError naming both, without the value', () => {
    const err = configError(() =>
      new EnvReader({ mqtt_password: 'both-secret-1', mqtt_password_file: file('b', 'x') }).secret(
        'mqtt_password',
      ),
    );
    expect(err.setting).toBe('mqtt_password_file');
    expect(err.message).toBe(
      `invalid mqtt_password_file=${JSON.stringify(join(dir, 'b'))}: expected either mqtt_password or mqtt_password_file, not both`,
    );
  });

  it('an unreadable or empty file is one line naming the setting and the path', () => {
    const missing = join(dir, 'nope');
    const err = configError(() => new EnvReader({ token_file: missing }).secret('token'));
    expect(err.setting).toBe('token_file');
    expect(err.message).toBe(
      `invalid token_file=${JSON.stringify(missing)}: expected a readable file (ENOENT)`,
    );
    expect(err.message).not.toContain('\n');
    const empty = file('empty', '\n');
    expect(configError(() => new EnvReader({ token_file: empty }).secret('token')).message).toBe(
      `invalid token_file=${JSON.stringify(empty)}: expected a file holding the token (it is empty)`,
    );
  });
});

describe('redaction by value', () => {
  it('hides registered secrets, their JSON-escaped form and every URL password', () => {
    registerSecret('s3cr"et-value');
    expect(redactSecrets('say s3cr"et-value and {"p":"s3cr\\"et-value"}')).toBe(
      `say ${REDACTED} and {"p":"${REDACTED}"}`,
    );
    expect(redactSecrets('connect amqp://bob:hunter22@h:5672/v failed; nats://a:b@h')).toBe(
      `connect amqp://bob:${REDACTED}@h:5672/v failed; nats://a:${REDACTED}@h`,
    );
    expect(redactSecrets('http://gateway:8080/system/functions')).toBe(
      'http://gateway:8080/system/functions',
    );
    registerSecret('amqp://u:pa%2Fss-word@h');
    expect(redactSecrets('pa/ss-word and pa%2Fss-word')).toBe(`${REDACTED} and ${REDACTED}`);
    registerSecret('nats://127.0.0.1:4222'); // a URL without a password: nothing in it is secret
    expect(redactSecrets('connecting to nats://127.0.0.1:4222')).toBe('connecting to nats://127.0.0.1:4222');
    expect(new EnvReader({ user_name: 'plain-user-name' }).secret('user_name', { redact: false })).toBe(
      'plain-user-name',
    );
    expect(redactSecrets('plain-user-name')).toBe('plain-user-name');
    registerSecret('rotated-token-1');
    forgetSecret('rotated-token-1');
    expect(redactSecrets('rotated-token-1')).toBe('rotated-token-1');
    registerSecret('abc'); // too short to scrub by value: it would blank out ordinary words
    expect(redactSecrets('abc')).toBe('abc');
  });

  it('createLogger writes no registered secret at any level, whatever field or message carries it', async () => {
    const secret = new EnvReader({ x_password: 'logged-secret-42' }).secret('x_password') as string;
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => {
      text += c.toString();
    });
    const log = createLogger({ level: 'trace', destination: out });
    log.trace({ detail: `pw=${secret}` }, 'trace');
    log.debug({ err: new Error(`broker said ${secret}`) }, 'debug');
    log.info(`message with ${secret}`);
    log.error({ nested: { deep: [secret] } }, 'error');
    log.child({ url: 'mqtt://u:other-pass@h' }).warn('child');
    await new Promise((r) => setImmediate(r));
    expect(text.split('\n').length).toBeGreaterThan(5);
    expect(text).not.toContain(secret);
    expect(text).not.toContain('other-pass');
    expect(text).toContain(REDACTED);
  });
});

describe('redactUrl', () => {
  it('hides the password of a URL and keeps the user name, host, port and path', () => {
    expect(redactUrl('mqtt://u:hunter2@h:1883')).toBe(`mqtt://u:${REDACTED}@h:1883`);
    expect(redactUrl(new URL('amqp://bob:s%40cret@h:5672/v'))).toBe(`amqp://bob:${REDACTED}@h:5672/v`);
    expect(redactUrl('nats://:tok3n@h:4222')).toBe(`nats://:${REDACTED}@h:4222`);
  });

  it('hides the password of an address written without a scheme', () => {
    expect(redactUrl('u:hunter2@h:4222')).toBe(`u:${REDACTED}@h:4222`);
    expect(redactUrl('h:4222')).toBe('h:4222');
  });

  it('leaves an address without a password as it is', () => {
    expect(redactUrl('mqtt://h:1883')).toBe('mqtt://h:1883');
    expect(redactUrl('amqp://bob@h/')).toBe('amqp://bob@h/');
  });

  it('never shows a URL it cannot parse (its password could not be found)', () => {
    expect(redactUrl('amqp://bob:hunter2@h:99999')).toBe('<unparseable URL>'); // port out of range
  });
});
