import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestCertificates, testCertificates } from '@connector/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, readSettingFile, readTlsFiles, type TlsFilePaths } from '../src/index.js';

// Real certificates made with openssl at test time (a CA, a client certificate and key), and a second set whose
// key belongs to another certificate.
let dir: string;
let certs: TestCertificates;
let other: TestCertificates;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'setting-files-'));
  certs = testCertificates(mkdtempSync(join(dir, 'a-')));
  other = testCertificates(mkdtempSync(join(dir, 'b-')));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

/** The one-line ConfigError `readTlsFiles(paths)` throws. */
function refused(paths: TlsFilePaths): ConfigError {
  try {
    readTlsFiles(paths);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('\n');
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('readTlsFiles', () => {
  it('reads a CA, a client certificate and its key as PEM text', () => {
    const tls = readTlsFiles({ ca: certs.ca, cert: certs.clientCert, key: certs.clientKey });
    expect(tls.ca).toContain('-----BEGIN CERTIFICATE-----');
    expect(tls.cert).toContain('-----BEGIN CERTIFICATE-----');
    expect(tls.key).toMatch(/-----BEGIN (EC |RSA )?PRIVATE KEY-----/);
    expect(readTlsFiles({})).toEqual({});
    expect(Object.keys(readTlsFiles({ ca: certs.ca }))).toEqual(['ca']);
  });

  it('wants a client certificate and its key together', () => {
    expect(refused({ cert: certs.clientCert }).message).toBe(
      'missing key_file: expected cert_file and key_file together (mutual TLS)',
    );
    expect(refused({ key: certs.clientKey }).setting).toBe('cert_file');
  });

  it('refuses an unreadable file, naming the setting and the path', () => {
    const missing = join(dir, 'nope.pem');
    expect(refused({ ca: missing }).message).toBe(
      `invalid ca_file="${missing}": expected a readable file (ENOENT)`,
    );
    expect(refused({ cert: missing, key: certs.clientKey }).setting).toBe('cert_file');
    expect(refused({ cert: certs.clientCert, key: missing }).setting).toBe('key_file');
  });

  it('refuses a CA file without a certificate (Node would ignore it) and a certificate that does not parse', () => {
    const text = file('text.pem', 'not a certificate\n');
    expect(refused({ ca: text }).message).toBe(
      `invalid ca_file="${text}": expected a PEM file holding a certificate (-----BEGIN CERTIFICATE-----)`,
    );
    expect(refused({ ca: certs.clientKey }).setting).toBe('ca_file'); // a key where the CA belongs
    const broken = file(
      'broken.pem',
      '-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n',
    );
    expect(refused({ ca: broken }).message).toMatch(
      /^invalid ca_file=".*broken.pem": expected PEM certificates that parse \(certificate 1 of 1: .+\)$/,
    );
    expect(refused({ cert: broken, key: certs.clientKey }).setting).toBe('cert_file');
  });

  it('refuses a key that does not parse, an encrypted key and the key of another certificate', () => {
    const text = file('not-a-key.pem', 'not a key\n');
    expect(refused({ cert: certs.clientCert, key: text }).message).toMatch(
      /^invalid key_file=".*not-a-key.pem": expected an unencrypted PEM private key \(.+\)$/,
    );
    const encrypted = file(
      'encrypted.pem',
      '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n',
    );
    expect(refused({ cert: certs.clientCert, key: encrypted }).message).toContain('this one is encrypted');
    expect(refused({ cert: certs.clientCert, key: other.clientKey }).message).toBe(
      `invalid key_file="${other.clientKey}": expected the private key of cert_file="${certs.clientCert}" (key values mismatch)`,
    );
  });

  it('names the settings it is given', () => {
    const names = { ca: 'tls_ca', cert: 'tls_cert', key: 'tls_key' };
    expect(() => readTlsFiles({ ca: join(dir, 'nope') }, names)).toThrow(/^invalid tls_ca=/);
  });
});

describe('readSettingFile', () => {
  it('returns the text, or one line naming the setting and the path', () => {
    expect(readSettingFile('token_file', file('token', 'abc\n'))).toBe('abc\n');
    const missing = join(dir, 'none');
    expect(() => readSettingFile('token_file', missing)).toThrow(
      `invalid token_file="${missing}": expected a readable file (ENOENT)`,
    );
  });
});
