import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../errors.js';

/**
 * Files named by settings, read at start: the one home of "a file setting that cannot be read, or does not hold what
 * it should, is a one-line ConfigError naming the setting and the path" — for the gateway's TLS files and for every
 * source's (`ca_file`, `cert_file`, `key_file`). Node ignores a CA file without a certificate (every connection
 * then fails verification) and a broken client certificate only fails at the first connection: both fail here.
 */

/** The text of the file `path` that setting `setting` names; a ConfigError naming both when it cannot be read. */
export function readSettingFile(setting: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw ConfigError.invalid(setting, path, `a readable file (${reason})`);
  }
}

/** Setting names of a TLS file set (defaults `ca_file`, `cert_file`, `key_file`). */
export interface TlsFileSettings {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** Paths of a TLS file set, as the settings give them (each optional; `cert` and `key` go together). */
export interface TlsFilePaths {
  readonly ca?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
}

/** PEM contents of a TLS file set, read and checked (only the ones given). */
export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

const SOURCE_SETTINGS: TlsFileSettings = { ca: 'ca_file', cert: 'cert_file', key: 'key_file' };
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g;

/** OpenSSL's reason of a failure, without its `error:0480006C:PEM routines::` prefix. */
function opensslReason(err: unknown): string {
  const message = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
  return message.replace(/^error:[0-9A-F]+:[^:]*::?/i, '');
}

/** The PEM certificates of a file, each parsed. */
function certificates(setting: string, path: string): string {
  const text = readSettingFile(setting, path);
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0)
    throw ConfigError.invalid(
      setting,
      path,
      'a PEM file holding a certificate (-----BEGIN CERTIFICATE-----)',
    );
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw ConfigError.invalid(
        setting,
        path,
        `PEM certificates that parse (certificate ${i + 1} of ${blocks.length}: ${opensslReason(err)})`,
      );
    }
  }
  return text;
}

/** An unencrypted PEM private key (there is no passphrase setting), parsed. */
function privateKey(setting: string, path: string): string {
  const text = readSettingFile(setting, path);
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text))
    throw ConfigError.invalid(
      setting,
      path,
      'an unencrypted PEM private key (this one is encrypted: openssl pkey -in <key> -out <new key>)',
    );
  try {
    createPrivateKey(text);
  } catch (err) {
    throw ConfigError.invalid(setting, path, `an unencrypted PEM private key (${opensslReason(err)})`);
  }
  return text;
}

/**
 * Read a TLS file set at start: the CA file holds at least one certificate and every certificate parses; the
 * client certificate and key come together, the key is an unencrypted PEM key and belongs to the certificate. Each
 * failure is one ConfigError naming the setting and the path.
 */
export function readTlsFiles(paths: TlsFilePaths, settings: TlsFileSettings = SOURCE_SETTINGS): TlsFiles {
  const { ca, cert, key } = paths;
  if ((cert === undefined) !== (key === undefined))
    throw ConfigError.missing(
      cert === undefined ? settings.cert : settings.key,
      `${settings.cert} and ${settings.key} together (mutual TLS)`,
    );
  const out: TlsFiles = {};
  if (ca !== undefined) out.ca = certificates(settings.ca, ca);
  if (cert !== undefined && key !== undefined) {
    out.cert = certificates(settings.cert, cert);
    out.key = privateKey(settings.key, key);
    try {
      createSecureContext({ cert: out.cert, key: out.key });
    } catch (err) {
      throw ConfigError.invalid(
        settings.key,
        key,
        `the private key of ${settings.cert}=${JSON.stringify(cert)} (${opensslReason(err)})`,
      );
    }
  }
  return out;
}
