import { readFileSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Credentials } from './config.js';
import { ConfigError, GatewayError } from './errors.js';
import type { HttpTlsOptions } from './http-pool.js';
import { readSettingFile, readTlsFiles } from './kit/setting-files.js';
import { forgetSecret, registerSecret } from './secrets.js';
import type { Logger } from './types.js';

/**
 * How the connector proves who it is to the gateway — the one home of that rule. TLS (a private CA, a client
 * certificate, the insecure opt-out) applies to every connection; basic auth or an OpenFaaS IAM token goes to
 * `/system/*` only; a function-scoped token (built-in function authentication) goes to the one function it names.
 */

/** Setting names of the gateway's TLS files. */
const GATEWAY_TLS_SETTINGS = { ca: 'gateway_ca_file', cert: 'gateway_cert_file', key: 'gateway_key_file' };

/** TLS and identity settings of the gateway connection (paths, as the env settings give them). */
export interface GatewayAuthOptions {
  /** PEM file of the CA that signed the gateway's certificate (env `gateway_ca_file`). */
  gatewayCaFile?: string | undefined;
  /** PEM client certificate for mutual TLS (env `gateway_cert_file`; needs `gatewayKeyFile`). */
  gatewayCertFile?: string | undefined;
  /** PEM key of that certificate (env `gateway_key_file`; needs `gatewayCertFile`). */
  gatewayKeyFile?: string | undefined;
  /** Do not verify the gateway's certificate (env `gateway_tls_insecure`; logged as a warning at start). */
  gatewayTlsInsecure?: boolean | undefined;
  /** Identity token file, re-read when it changes, e.g. a projected service-account token (env `gateway_token_file`). */
  gatewayTokenFile?: string | undefined;
  /**
   * Exchange the identity token at the gateway (RFC 8693, OpenFaaS IAM) for an access token: true (default) uses
   * `<gateway>/oauth/token`, a URL names the endpoint, false sends the file's token as it is (env `gateway_token_exchange`).
   */
  gatewayTokenExchange?: boolean | string | undefined;
  /** Send each function a function-scoped token (OpenFaaS built-in function authentication; env `gateway_function_auth`). */
  gatewayFunctionAuth?: boolean | undefined;
}

/** The TLS part: `tls.connect` options (undefined when nothing is set). Throws ConfigError on a bad combination or
 * a file that cannot be read or does not hold what it should (see `readTlsFiles`). */
export function gatewayTls(o: GatewayAuthOptions, gateway: URL): HttpTlsOptions | undefined {
  const { gatewayCaFile: ca, gatewayCertFile: cert, gatewayKeyFile: key, gatewayTlsInsecure: insecure } = o;
  if (ca === undefined && cert === undefined && key === undefined && !insecure) return undefined;
  if (gateway.protocol !== 'https:') {
    const name =
      ca !== undefined
        ? 'gateway_ca_file'
        : cert !== undefined
          ? 'gateway_cert_file'
          : key !== undefined
            ? 'gateway_key_file'
            : 'gateway_tls_insecure';
    throw new ConfigError(
      name,
      `${name} is set but gateway_url is ${gateway.protocol}//${gateway.host}: expected an https gateway_url`,
    );
  }
  const out: HttpTlsOptions = readTlsFiles({ ca, cert, key }, GATEWAY_TLS_SETTINGS);
  if (insecure) out.rejectUnauthorized = false;
  return out;
}

/** TLS error codes of Node/OpenSSL that mean "the certificate exchange failed", and what to do about it. */
const VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * A one-line reason for a TLS failure talking to `origin`, or undefined when `err` is not one: it says
 * "certificate", the gateway and the setting that fixes it.
 */
export function tlsFailure(err: unknown, origin: string): string | undefined {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? (e.message.split('\n')[0] ?? '') : '';
  if (VERIFY_CODES.has(code))
    return `TLS to ${origin}: the gateway's certificate is not trusted (${message}); set gateway_ca_file to the CA that signed it`;
  if (code.startsWith('ERR_SSL_') || /certificate|handshake/i.test(message)) {
    const clientCert =
      /certificate required|bad certificate|unknown ca|certificate unknown|handshake failure/i.test(message);
    return clientCert
      ? `TLS to ${origin}: the gateway refused the client certificate (${message}); set gateway_cert_file and gateway_key_file to a certificate it trusts`
      : `TLS to ${origin}: certificate exchange failed (${message})`;
  }
  // A gateway that verifies client certificates after a TLS 1.3 handshake (Node, some proxies) just closes a new
  // connection without an alert: nothing was ever read on it.
  const bytesRead = (err as { bytesRead?: unknown } | undefined)?.bytesRead;
  if (code === 'HTTP_SOCKET_CLOSED' && origin.startsWith('https:') && bytesRead === 0)
    return `TLS to ${origin}: the gateway closed the connection before answering (${message}); it may require a client certificate or refuse the one presented: check gateway_cert_file and gateway_key_file`;
  return undefined;
}

/** POST an `application/x-www-form-urlencoded` body to an absolute URL; the status and the parsed JSON. */
export type PostForm = (url: string, form: string) => Promise<{ status: number; json: unknown }>;

/** Authentication of requests to the gateway: what `Authorization` each request carries. */
export interface GatewayAuth {
  /** `basic`, `token` (OpenFaaS IAM) or `none`. */
  readonly kind: 'none' | 'basic' | 'token';
  /** Whether each function gets a function-scoped token. */
  readonly functionAuth: boolean;
  /** `Authorization` value for `/system/*` (undefined: none). Rejects when no token can be had. */
  system(): Promise<string | undefined>;
  /** `Authorization` value for a call to function `name` in `namespace` (only with `functionAuth`). */
  function(name: string, namespace: string): Promise<string>;
  /** The gateway answered 401 to `authorization`: forget it, so the next request gets a fresh token. */
  rejected(authorization: string): void;
}

/** A cached access token and when to refresh it. */
interface Cached {
  header: string;
  /** Refresh from here on (80% of its lifetime). */
  refreshAt: number;
  /** Unusable from here on. */
  expiresAt: number;
}

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
/** Lifetime assumed when the answer has neither `expires_in` nor a JWT `exp`. */
const DEFAULT_LIFETIME_MS = 60_000;

/** Milliseconds until a JWT's `exp`, when the token is a JWT that has one. */
function jwtLifetime(token: string, now: number): number | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp * 1000 - now : undefined;
  } catch {
    return undefined;
  }
}

/** Options of `createGatewayAuth` besides the settings. */
export interface GatewayAuthContext {
  /** The gateway (base URL with its path prefix). */
  gateway: URL;
  /** Basic-auth credentials for `/system/*`. */
  credentials?: Credentials | undefined;
  /** How to POST the token exchange (the invoker's pool: same TLS, deadline and size limit). */
  post: PostForm;
  logger: Logger;
}

/** Build the gateway's authentication from the settings. Throws ConfigError on an invalid combination. */
export function createGatewayAuth(o: GatewayAuthOptions, ctx: GatewayAuthContext): GatewayAuth {
  const file = o.gatewayTokenFile;
  if (file !== undefined && ctx.credentials !== undefined)
    throw new ConfigError(
      'gateway_token_file',
      'gateway_token_file and basic auth (basic_auth / credentials) are both set: choose one way to authenticate to the gateway',
    );
  if (file === undefined) {
    if (o.gatewayTokenExchange !== undefined && o.gatewayTokenExchange !== false)
      throw ConfigError.missing(
        'gateway_token_file',
        'the identity token to exchange (gateway_token_exchange is set)',
      );
    if (o.gatewayFunctionAuth)
      throw ConfigError.missing('gateway_token_file', 'the identity token function tokens are exchanged for');
    const basic =
      ctx.credentials === undefined
        ? undefined
        : `Basic ${Buffer.from(`${ctx.credentials.username}:${ctx.credentials.password}`).toString('base64')}`;
    return {
      kind: basic === undefined ? 'none' : 'basic',
      functionAuth: false,
      system: () => Promise.resolve(basic),
      function: () => Promise.reject(new Error('function authentication needs gateway_token_file')),
      rejected: () => undefined,
    };
  }
  return tokenAuth(file, o, ctx);
}

function tokenAuth(file: string, o: GatewayAuthOptions, ctx: GatewayAuthContext): GatewayAuth {
  const log = ctx.logger;
  const exchangeOn = o.gatewayTokenExchange ?? true;
  const prefix = ctx.gateway.pathname.replace(/\/+$/, '');
  const tokenUrl = typeof exchangeOn === 'string' ? exchangeOn : `${ctx.gateway.origin}${prefix}/oauth/token`;
  if (typeof exchangeOn === 'string') {
    try {
      new URL(exchangeOn);
    } catch {
      throw ConfigError.invalid(
        'gateway_token_exchange',
        exchangeOn,
        'true, false or the token endpoint URL',
      );
    }
  }
  if (o.gatewayFunctionAuth && exchangeOn === false)
    throw new ConfigError(
      'gateway_function_auth',
      'gateway_function_auth=true needs gateway_token_exchange (function tokens come from the token endpoint)',
    );

  // The identity token: read at start (an unreadable file is a ConfigError), then again whenever the file changes.
  let identity = readSettingFile('gateway_token_file', file).trim();
  if (identity === '')
    throw new ConfigError('gateway_token_file', `gateway_token_file=${JSON.stringify(file)} is empty`);
  registerSecret(identity); // never in a log line or readiness text (the rotated one replaces it there too)
  const sig = (s: { mtimeMs: number; size: number; ino: number }) => `${s.mtimeMs}:${s.size}:${s.ino}`;
  let fileSig = sig(statSync(file));
  let readFailureLogged = false;
  /** Re-read the file if it changed; true when the token in it is a new one. */
  const reread = async (): Promise<boolean> => {
    try {
      const s = sig(await stat(file));
      if (s === fileSig) return false;
      const next = readFileSync(file, 'utf8').trim();
      fileSig = s;
      readFailureLogged = false;
      if (next === '' || next === identity) return false;
      forgetSecret(identity);
      registerSecret(next);
      identity = next;
      log.info({ file }, 'gateway token file changed; using the new token');
      return true;
    } catch (err) {
      // A projected token is swapped by renaming: a miss in between keeps the last token.
      if (!readFailureLogged)
        log.warn(
          { file, code: (err as NodeJS.ErrnoException).code },
          'gateway_token_file cannot be read; keeping the last token',
        );
      readFailureLogged = true;
      return false;
    }
  };
  /** A reason from the token endpoint, with the tokens we sent removed (a hostile endpoint may echo them). */
  const scrub = (text: string, secrets: string[]) =>
    secrets.reduce((t, s) => (s === '' ? t : t.split(s).join('[redacted]')), text).slice(0, 300);

  const exchange = async (subject: string, extra: Record<string, string> = {}): Promise<Cached> => {
    const form = new URLSearchParams({
      grant_type: TOKEN_EXCHANGE,
      subject_token_type: ID_TOKEN,
      subject_token: subject,
      ...extra,
    }).toString();
    const what = `gateway token exchange at ${tokenUrl}${extra['audience'] ? ` for ${extra['audience']}` : ''}`;
    const { status, json } = await ctx.post(tokenUrl, form);
    const body = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
    const token = body['access_token'];
    if (status !== 200 || typeof token !== 'string' || token === '') {
      const reason = [body['error'], body['error_description']]
        .filter((v) => typeof v === 'string')
        .join(': ');
      throw new GatewayError(
        'ERR_GATEWAY_STATUS',
        `${what} answered ${status}${reason === '' ? '' : ` (${scrub(reason, [subject, identity])})`}`,
        status,
      );
    }
    const now = Date.now();
    const expiresIn = body['expires_in'];
    // At least 1 s: a token that claims to be expired already must not turn every request into an exchange.
    const lifetime = Math.max(
      1000,
      typeof expiresIn === 'number' && expiresIn > 0
        ? expiresIn * 1000
        : (jwtLifetime(token, now) ?? DEFAULT_LIFETIME_MS),
    );
    return { header: `Bearer ${token}`, refreshAt: now + lifetime * 0.8, expiresAt: now + lifetime };
  };

  let systemToken: Cached | undefined;
  let systemFlight: Promise<Cached> | undefined;
  const fnTokens = new Map<string, Cached>();
  const fnFlights = new Map<string, Promise<Cached>>();

  /** A cached token while fresh; else a new one (one request at a time); the old one while a refresh fails. */
  const refreshed = async (
    current: Cached | undefined,
    flight: () => Promise<Cached>,
    what: string,
  ): Promise<Cached> => {
    const now = Date.now();
    if (current !== undefined && now < current.refreshAt) return current;
    try {
      return await flight();
    } catch (err) {
      const at = Date.now();
      if (current !== undefined && at < current.expiresAt) {
        // Try again halfway to expiry (at most 5 s on), not on every request in between.
        current.refreshAt = at + Math.min(5000, (current.expiresAt - at) / 2);
        log.warn(
          { err: (err as Error).message },
          `${what} refresh failed; using the current token until it expires`,
        );
        return current;
      }
      throw err;
    }
  };

  const system = async (): Promise<Cached> => {
    if (await reread()) {
      systemToken = undefined;
      fnTokens.clear();
    }
    if (!exchangeOn) return { header: `Bearer ${identity}`, refreshAt: Infinity, expiresAt: Infinity };
    const got = await refreshed(
      systemToken,
      () =>
        (systemFlight ??= exchange(identity).finally(() => {
          systemFlight = undefined;
        })),
      'gateway access token',
    );
    systemToken = got;
    return got;
  };

  return {
    kind: 'token',
    functionAuth: o.gatewayFunctionAuth ?? false,
    system: async () => (await system()).header,
    async function(name, namespace) {
      const audience = `${namespace}:${name}`;
      const got = await refreshed(
        fnTokens.get(audience),
        () => {
          let f = fnFlights.get(audience);
          if (f === undefined) {
            // Exchanged for the gateway access token, scope `function`, audience `namespace:name` (as OpenFaaS IAM does).
            const viaSystem = async () =>
              exchange((await system()).header.slice('Bearer '.length), { scope: 'function', audience });
            // A refused exchange may mean the cached access token was revoked early: once more with a new one.
            f = viaSystem()
              .catch(() => {
                systemToken = undefined;
                return viaSystem();
              })
              .finally(() => fnFlights.delete(audience));
            fnFlights.set(audience, f);
          }
          return f;
        },
        `function token for ${audience}`,
      );
      fnTokens.set(audience, got);
      return got.header;
    },
    rejected(authorization) {
      if (systemToken?.header === authorization) systemToken = undefined;
      for (const [k, v] of fnTokens) if (v.header === authorization) fnTokens.delete(k);
      // A direct token (no exchange) was refused: the next request re-reads the file in any case.
      if (!exchangeOn) fileSig = '';
    },
  };
}
