import { Pool } from 'undici';
import type { Credentials } from './config.js';
import { GatewayError } from './errors.js';

/** The fields of the gateway's FunctionStatus that routing uses. */
export interface FunctionStatus {
  readonly name: string;
  readonly namespace?: string;
  readonly annotations?: Readonly<Record<string, string>> | null;
  readonly labels?: Readonly<Record<string, string>> | null;
}

/** Raw response of one gateway call. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Options of the gateway HTTP client. */
export interface GatewayClientOptions {
  gatewayUrl: string;
  credentials?: Credentials | undefined;
  userAgent: string;
  /** Per-request timeout in ms for headers and for body. */
  timeout: number;
  /** Pool size (default 128). */
  connections?: number;
}

const EMPTY = new Uint8Array(0);

/** Flatten undici's header values (string | string[]) into one string each. */
export function flattenHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  // Usually every value is already a string: return undici's object as it is, copy only when needed.
  for (const k in h) {
    const v = h[k];
    if (typeof v !== 'string') {
      const out: Record<string, string> = {};
      for (const key in h) {
        const val = h[key];
        if (val !== undefined) out[key] = Array.isArray(val) ? val.join(', ') : val;
      }
      return out;
    }
  }
  return h as Record<string, string>;
}

/** HTTP client of one gateway: a keep-alive undici pool; basic auth only on `/system/*`. */
export class GatewayClient {
  /** The shared connection pool (also used for invocations). */
  readonly pool: Pool;
  /** Path prefix of the gateway URL, without trailing slash ('' for most installs). */
  readonly prefix: string;
  private readonly systemHeaders: Record<string, string>;
  private readonly timeout: number;

  constructor(opts: GatewayClientOptions) {
    const url = new URL(opts.gatewayUrl);
    this.prefix = url.pathname.replace(/\/+$/, '');
    this.timeout = opts.timeout;
    this.pool = new Pool(url.origin, {
      connections: opts.connections ?? 128,
      keepAliveTimeout: 30_000,
      headersTimeout: opts.timeout,
      bodyTimeout: opts.timeout,
    });
    this.systemHeaders = { 'user-agent': opts.userAgent, accept: 'application/json' };
    if (opts.credentials) {
      const token = Buffer.from(`${opts.credentials.username}:${opts.credentials.password}`).toString(
        'base64',
      );
      this.systemHeaders['authorization'] = `Basic ${token}`;
    }
  }

  /** GET a `/system` path; resolves with status and parsed JSON (undefined when not JSON). */
  async system(path: string): Promise<{ status: number; json: unknown }> {
    let res: Awaited<ReturnType<Pool['request']>>;
    try {
      res = await this.pool.request({
        path: this.prefix + path,
        method: 'GET',
        headers: this.systemHeaders,
        headersTimeout: this.timeout,
        bodyTimeout: this.timeout,
      });
    } catch (err) {
      throw new GatewayError(
        'ERR_GATEWAY_UNREACHABLE',
        `gateway unreachable: GET ${path}: ${(err as Error).message}`,
        undefined,
        { cause: err },
      );
    }
    const text = await res.body.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, json };
  }

  /** Namespaces to scan, or `undefined` when the provider has none (404 or an empty list). */
  async namespaces(): Promise<string[] | undefined> {
    const { status, json } = await this.system('/system/namespaces');
    if (status === 404) return undefined;
    this.check('/system/namespaces', status);
    if (!Array.isArray(json) || json.length === 0) return undefined;
    return json.filter((n): n is string => typeof n === 'string' && n !== '');
  }

  /** Functions of one namespace (or of the provider's only namespace when `namespace` is undefined). */
  async functions(namespace?: string): Promise<FunctionStatus[]> {
    const path =
      namespace === undefined
        ? '/system/functions'
        : `/system/functions?namespace=${encodeURIComponent(namespace)}`;
    const { status, json } = await this.system(path);
    this.check(path, status);
    if (!Array.isArray(json))
      throw new GatewayError('ERR_GATEWAY_STATUS', `GET ${path}: expected a JSON array`, status);
    return json.filter(
      (f): f is FunctionStatus => typeof f === 'object' && f !== null && typeof f.name === 'string',
    );
  }

  private check(path: string, status: number): void {
    if (status === 200) return;
    const hint = status === 401 || status === 403 ? ' (check basic_auth / credentials)' : '';
    throw new GatewayError('ERR_GATEWAY_STATUS', `GET ${path} answered ${status}${hint}`, status);
  }

  /** Close the pool (waits for requests in flight). */
  async close(): Promise<void> {
    if (this.pool.destroyed) return;
    await this.pool.close().catch(() => this.pool.destroy());
  }

  /** Fail every request in flight now and refuse new ones. */
  destroy(): void {
    if (!this.pool.destroyed) void this.pool.destroy().catch(() => undefined);
  }
}

export { EMPTY as EMPTY_BODY };
