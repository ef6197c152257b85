import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCertificates } from '@connector/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { natsOptionsFromEnv, parseServer, redactServer, resolveNatsOptions } from './options.js';

const dir = mkdtempSync(join(tmpdir(), 'nats-opts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('natsOptionsFromEnv', () => {
  it('keeps the OpenFaaS nats-connector names: broker_host (port 4222), topics', () => {
    const o = natsOptionsFromEnv({ broker_host: 'nats', topics: 'a.b, c.*', stream: 'S' });
    expect(o.servers).toEqual(['nats://nats:4222']);
    expect(o.subjects).toEqual(['a.b', 'c.*']);
    expect(natsOptionsFromEnv({ broker_host: 'nats:4333', stream: 'S' }).servers).toEqual([
      'nats://nats:4333',
    ]);
    expect(natsOptionsFromEnv({ mode: 'core' }).servers).toEqual(['nats://nats:4222']);
  });

  it('reads nats_url, JetStream settings and max_inflight as the default max_ack_pending', () => {
    const o = natsOptionsFromEnv({
      nats_url: 'nats://a:4222,tls://b:4223',
      subjects: 'x.>',
      stream: 'ORDERS',
      consumer: 'fn-connector',
      ack_wait: '45s',
      max_inflight: '16',
      max_deliver: '10',
      nak_delay: '2s',
      nak_delay_max: '1m',
      deliver_policy: 'new',
      create_stream: 'false',
    });
    expect(o).toMatchObject({
      servers: ['nats://a:4222', 'tls://b:4223'],
      subjects: ['x.>'],
      stream: 'ORDERS',
      consumer: 'fn-connector',
      ackWait: 45_000,
      maxAckPending: 16,
      maxDeliver: 10,
      nakDelay: { min: 2000, max: 60_000 },
      deliverPolicy: 'new',
      createStream: false,
    });
    expect(
      natsOptionsFromEnv({ stream: 'S', max_inflight: '16', max_ack_pending: '100' }).maxAckPending,
    ).toBe(100);
  });

  it('reads each secret directly or from *_file, and the .creds file', () => {
    const pw = file('pw', 's3cret\n');
    expect(natsOptionsFromEnv({ stream: 'S', user: 'u', password_file: pw }).auth).toEqual({
      user: 'u',
      password: 's3cret',
    });
    expect(natsOptionsFromEnv({ stream: 'S', token_file: file('tok', 'tkn\n') }).auth).toEqual({
      token: 'tkn',
    });
    const seed = 'SUAMK2FG4MI6UE3ACF3FK3OIQBCEIEZV7NSWFFEW63UXMRLFM2XLAXK4GY';
    expect(natsOptionsFromEnv({ stream: 'S', nkey_seed: seed }).auth).toEqual({ nkeySeed: seed });
    const creds = file('u.creds', '-----BEGIN NATS USER JWT-----\nx\n------END NATS USER JWT------\n');
    expect(natsOptionsFromEnv({ stream: 'S', creds_file: creds }).auth?.creds).toContain('NATS USER JWT');
    const { ca } = testCertificates(mkdtempSync(join(dir, 'certs-')));
    expect(natsOptionsFromEnv({ stream: 'S', tls_ca_file: ca }).tls?.ca).toContain(
      '-----BEGIN CERTIFICATE-----',
    );
    // read and checked at start (core's readTlsFiles): a CA file without a certificate is refused here
    expect(() => natsOptionsFromEnv({ stream: 'S', ca_file: file('ca.pem', 'CA') })).toThrow(
      /^invalid ca_file=".*ca.pem": expected a PEM file holding a certificate/,
    );
  });

  it('fails with one line naming the setting', () => {
    const bad: [Record<string, string>, string][] = [
      [{}, 'missing stream: expected a JetStream stream name (or mode=core)'],
      [{ stream: 'S', mode: 'push' }, 'invalid mode="push": expected one of jetstream, core'],
      [{ stream: 'S', topics: 'a..b' }, 'invalid topics="a..b": expected a subject without empty tokens'],
      [{ stream: 'S', ack_wait: 'soon' }, 'invalid ack_wait="soon"'],
      [{ stream: 'a.b' }, 'invalid stream="a.b"'],
      [
        { stream: 'S', nats_url: 'http://x' },
        'invalid nats_url="http://x": expected a nats:// or tls:// URL',
      ],
      [{ stream: 'S', user: 'u' }, 'missing password: expected user and password together'],
      [{ stream: 'S', user: 'u', password: 'p', token: 't' }, 'invalid auth="user/password + token"'],
      [
        { stream: 'S', password: 'p', password_file: '/x' },
        'invalid password_file="/x": expected either password',
      ],
      [
        { stream: 'S', token_file: '/nonexistent' },
        'invalid token_file="/nonexistent": expected a readable file',
      ],
      [{ stream: 'S', nkey_seed: 'nope' }, 'invalid nkey_seed="<redacted>": expected a user nkey seed'],
      [{ mode: 'core', reply: 'true' }, 'missing reply_subjects'],
      [
        { stream: 'S', reply: 'true', reply_subjects: '_INBOX.>' },
        'invalid reply="true": expected reply only with mode=core',
      ],
      [
        { stream: 'S', cert_file: file('c', 'C') },
        'missing key_file: expected cert_file and key_file together',
      ],
    ];
    for (const [env, message] of bad) {
      let err: unknown;
      try {
        natsOptionsFromEnv(env);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(env)).toMatchObject({ code: 'ERR_CONFIG' });
      expect((err as Error).message).toContain(message);
      expect((err as Error).message).not.toContain('\n');
    }
  });
});

describe('resolveNatsOptions', () => {
  it('applies defaults', () => {
    const o = resolveNatsOptions({ servers: '127.0.0.1', stream: 'S' });
    expect(o).toMatchObject({
      servers: ['nats://127.0.0.1'],
      mode: 'jetstream',
      consumer: 'openfaas-nats-connector',
      ackWait: 30_000,
      maxAckPending: 64,
      batch: 10,
      maxDeliver: -1,
      nakDelay: { min: 1000, max: 60_000 },
      reply: false,
      createStream: true,
      deliverPolicy: 'all',
    });
  });
  it('never shows credentials of a server URL', () => {
    expect(redactServer('nats://u:p@h:4222')).toBe('nats://u:[redacted]@h:4222');
    expect(() => parseServer('nats_url', 'http://u:secret@h')).toThrow(
      /^invalid nats_url="http:\/\/u:\[redacted\]@h\/?"/,
    );
  });
});
