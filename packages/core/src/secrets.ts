import { ConfigError } from './errors.js';
import { readSettingFile } from './kit/setting-files.js';

/** What a redacted secret is replaced with in logs and error texts. */
export const REDACTED = '[redacted]';

/** Secrets shorter than this are not scrubbed by value (they would blank out ordinary words); fields still are. */
const MIN_SCRUBBED_LENGTH = 4;

/** Every secret value this process has read (settings, credentials): what `redactSecrets` hides. */
const secrets = new Set<string>();

/** A URL scheme with its `//`, a user name and a password as they appear in `user:password@` (pieces of the patterns
 * below, so the three agree on what a URL and its credentials look like). */
const SCHEME = String.raw`[a-z][a-z0-9+.-]*:\/\/`;
const USER = String.raw`[^\s:@/"'<>]*`;
const PASSWORD = String.raw`[^\s@/"'<>]+`;

/** `user:password@` in any `scheme://` URL: the password part is hidden wherever such a URL is written. */
const URL_USERINFO = new RegExp(String.raw`\b(${SCHEME}${USER}):(${PASSWORD})@`, 'gi');
/** `user:password@` at the start of an address written without a scheme (`user:pass@host:4222`). */
const BARE_USERINFO = new RegExp(`^(${USER}):(${PASSWORD})@`);
/** Text that starts with a URL scheme. */
const HAS_SCHEME = new RegExp(`^${SCHEME}`, 'i');

/**
 * Remember a secret so every log line and readiness text the connector writes hides it (`redactSecrets`). Of a URL
 * only the password is remembered (as written and decoded). Values shorter than 4 characters are not scrubbed by value.
 */
export function registerSecret(value: string | undefined): void {
  if (value === undefined) return;
  const add = (v: string) => {
    if (v.length < MIN_SCRUBBED_LENGTH) return;
    secrets.add(v);
    const json = JSON.stringify(v).slice(1, -1); // as it appears inside a JSON log line
    if (json !== v) secrets.add(json);
  };
  if (HAS_SCHEME.test(value)) {
    // A URL: only its password is secret (the rest is logged, redacted, to say where the connector connects).
    try {
      const u = new URL(value);
      if (u.password !== '') {
        add(u.password);
        add(decodeURIComponent(u.password));
      }
      return;
    } catch {
      // not a URL after all: the whole value is the secret
    }
  }
  add(value);
}

/** Stop hiding a secret that is no longer in use (a rotated token), so the registry does not grow with rotations. */
export function forgetSecret(value: string): void {
  secrets.delete(value);
  secrets.delete(JSON.stringify(value).slice(1, -1));
}

/** `text` with every registered secret and every URL password replaced by `[redacted]`. */
export function redactSecrets(text: string): string {
  let out = text.includes('://') ? text.replace(URL_USERINFO, `$1:${REDACTED}@`) : text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join(REDACTED);
  return out;
}

/**
 * A broker or gateway address for logs and error messages: its password replaced by `[redacted]` (the user name
 * kept), with or without a scheme (`nats://u:p@h`, `u:p@h:4222`); without a password it is shown as written; a URL
 * that does not parse is `<unparseable URL>` (its password could not be found reliably). The one rule every source
 * uses to show where it connects.
 */
export function redactUrl(url: URL | string): string {
  const text = String(url).trim();
  if (!HAS_SCHEME.test(text)) return redactSecrets(text.replace(BARE_USERINFO, `$1:${REDACTED}@`));
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return '<unparseable URL>';
  }
  // As written when there is no password; else in the URL's own form, where the password is one encoded run.
  return redactSecrets(u.password === '' ? text : u.toString());
}

/**
 * Read one secret setting the one way every connector does: env `name`, or the file named by env `<name>_file`
 * (Kubernetes secret mounts). Both set is a ConfigError naming both; an unreadable or empty file is one line naming
 * the setting and the path (never the content). A trailing newline is dropped. The value is registered for
 * redaction unless `redact: false` (a user name read from a file the same way). `get` reads one env value (trimmed;
 * undefined when unset).
 */
export function readSecret(
  name: string,
  get: (name: string) => string | undefined,
  options: { redact?: boolean } = {},
): string | undefined {
  const remember = options.redact === false ? () => undefined : registerSecret;
  const fileSetting = `${name}_file`;
  const direct = get(name);
  const path = get(fileSetting);
  if (direct !== undefined && path !== undefined)
    throw ConfigError.invalid(fileSetting, path, `either ${name} or ${fileSetting}, not both`);
  if (path === undefined) {
    remember(direct);
    return direct;
  }
  const value = readSettingFile(fileSetting, path).replace(/\r?\n$/, '');
  if (value === '') throw ConfigError.invalid(fileSetting, path, `a file holding the ${name} (it is empty)`);
  remember(value);
  return value;
}
