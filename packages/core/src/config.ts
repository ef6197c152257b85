import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './errors.js';
import { isPlainHeaderValue } from './headers.js';

/** How annotation topics are compared with message topics. */
export type TopicMatcherOption = 'exact' | 'mqtt' | ((pattern: string, topic: string) => boolean);

/** Basic-auth credentials for the gateway's `/system` API. */
export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** Options of `createController`: how to discover and invoke functions. */
export interface ControllerOptions {
  /** Gateway base URL, e.g. `http://gateway.openfaas:8080`. */
  gatewayUrl: string;
  /** Timeout of one invocation in ms (default 30 s). */
  upstreamTimeout?: number;
  /** Topic-map rebuild period in ms (default 30 s). */
  rebuildInterval?: number;
  /** Separator of topics in the `topic` annotation (default `,`). */
  topicDelimiter?: string;
  /** Invoke through `/async-function` (default false). */
  asyncInvocation?: boolean;
  /** `X-Callback-Url` for async invocations. */
  asyncCallbackUrl?: string;
  /** Content-Type sent with every invocation unless the message or the call sets one. */
  contentType?: string;
  /** Credentials for `/system/*` (never sent to functions). */
  credentials?: Credentials;
  /** User-Agent of every request (default `connector/<connectorName>`). */
  userAgent?: string;
  /** Sent as `X-Connector` (default `connector`). */
  connectorName?: string;
  /** Only map and invoke functions of this namespace. */
  namespace?: string;
  /** Send `X-Topic` (default true). */
  sendTopic?: boolean;
  /** Topic matching: `exact` (default), `mqtt` (`+`/`#` in annotations) or a predicate. */
  topicMatcher?: TopicMatcherOption;
  /** Log every invocation result (default false). */
  printResponse?: boolean;
  /** Include the response body when printing results (default false). */
  printResponseBody?: boolean;
  /** Log request bodies (default false). */
  printRequestBody?: boolean;
  /** Log the topic map after every rebuild (default false). */
  printSync?: boolean;
  /** Max HTTP connections to the gateway (default 128). */
  connections?: number;
  /** Deadline of one `/system` call in ms (default: `upstreamTimeout`, at most 30 s). */
  systemTimeout?: number;
  /** Largest function response kept, in bytes (default 10 MiB); a larger one fails that invocation (not retried). */
  maxResponseBytes?: number;
}

/** Options of the delivery engine (`createConnector`). */
export interface DeliveryOptions {
  /** Function invocations in flight across the connector (default 64). */
  maxInFlight?: number;
  /** Invocations in flight per function (default unlimited). */
  maxInFlightPerFunction?: number;
  /** Retry policy. */
  retry?: RetryOptions;
  /** What to do with a message whose function still fails after retries (default `redeliver`). */
  onFailure?: 'dead-letter' | 'redeliver';
  /** Append dead letters to this JSONL file. */
  deadLetterFile?: string;
  /** How long `stop()` waits for in-flight deliveries, in ms (default 30 s). */
  drainTimeout?: number;
  /** Bytes of message bodies accepted and not yet settled before the source is held back (default 64 MiB). */
  maxPendingBytes?: number;
  /** Adaptive concurrency per function (AIMD on 429/503/deadlines) unless a function's annotation says otherwise. */
  adaptiveConcurrency?: boolean;
}

/** Retry policy: exponential backoff with full jitter. */
export interface RetryOptions {
  /** Retries after the first attempt (default 3). */
  maxRetries?: number;
  /** Base delay in ms (default 100). */
  minDelay?: number;
  /** Delay cap in ms (default 10 s). */
  maxDelay?: number;
  /** Statuses that are retried (default 408, 429, 502, 503, 504). */
  retryOnStatus?: readonly number[];
}

/** Everything `configFromEnv` reads: spread it into `createController` and `createConnector`. */
export interface ConnectorConfig extends ControllerOptions, DeliveryOptions {
  /** Port of the /healthz /readyz /metrics server, or false when disabled (env `http_port=0`). */
  http: { port: number; host?: string } | false;
  /** pino level (env `log_level`, default `info`). */
  logLevel: LogLevel;
}

/** pino log levels. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};
const DURATION_RE = /^(?:(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$/;
const DURATION_PART_RE = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g;

/** Parse a Go duration (`30s`, `1m30s`, `500ms`, `0`) to milliseconds; undefined when invalid. */
export function parseDuration(value: string): number | undefined {
  const v = value.trim();
  if (v === '0') return 0;
  if (!DURATION_RE.test(v)) return undefined;
  let ms = 0;
  for (const m of v.matchAll(DURATION_PART_RE))
    ms += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
  return ms;
}

/** Parse a boolean the way Go's strconv.ParseBool does (plus yes/no/on/off); undefined when invalid. */
export function parseBool(value: string): boolean | undefined {
  switch (value.trim().toLowerCase()) {
    case '1':
    case 't':
    case 'true':
    case 'yes':
    case 'y':
    case 'on':
      return true;
    case '0':
    case 'f':
    case 'false':
    case 'no':
    case 'n':
    case 'off':
      return false;
    default:
      return undefined;
  }
}

/** Environment as `process.env` holds it. */
export type Env = Readonly<Record<string, string | undefined>>;

/** Reads typed settings from an env map; every failure is a one-line ConfigError naming the variable. */
export class EnvReader {
  constructor(private readonly env: Env) {}

  /** The raw value, or undefined when unset or empty. */
  raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  /** Throw the standard one-line error for `name`. */
  fail(name: string, value: string, expected: string): never {
    throw ConfigError.invalid(name, value, expected);
  }

  /** A string setting. */
  string(name: string): string | undefined {
    return this.raw(name);
  }

  /** A boolean setting. */
  bool(name: string): boolean | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    const b = parseBool(v);
    return b ?? this.fail(name, v, 'true or false');
  }

  /** A duration setting in ms (Go syntax). */
  duration(name: string, opts: { min?: number } = {}): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    const ms = parseDuration(v);
    if (ms === undefined) return this.fail(name, v, 'a duration like 30s, 1m30s or 500ms');
    if (opts.min !== undefined && ms < opts.min)
      return this.fail(name, v, `a duration of at least ${opts.min}ms`);
    return ms;
  }

  /** An integer setting within [min, max]. */
  int(name: string, opts: { min?: number; max?: number } = {}): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    const n = /^-?\d+$/.test(v) ? Number(v) : Number.NaN;
    const min = opts.min ?? Number.MIN_SAFE_INTEGER;
    const max = opts.max ?? Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      const range = opts.max === undefined ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
      return this.fail(name, v, range);
    }
    return n;
  }

  /** A size in bytes: a whole number, or one with a unit (`64Mi`, `10MiB`, `512KB`, `1G`). */
  bytes(name: string, opts: { min?: number } = {}): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    const m = /^(\d+)\s*(|b|k|kb|ki|kib|m|mb|mi|mib|g|gb|gi|gib)$/i.exec(v);
    const unit = (m?.[2] ?? '').toLowerCase().replace(/b$/, '');
    const scale: Record<string, number> = {
      '': 1,
      k: 1e3,
      ki: 1024,
      m: 1e6,
      mi: 1024 ** 2,
      g: 1e9,
      gi: 1024 ** 3,
    };
    const n = m ? Number(m[1]) * (scale[unit] ?? Number.NaN) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < (opts.min ?? 1))
      return this.fail(name, v, 'a size like 65536, 64Mi or 10MB');
    return n;
  }

  /** A value sent as an HTTP header: printable ASCII only. */
  header(name: string): string | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    return isPlainHeaderValue(v) ? v : this.fail(name, v, 'printable ASCII (it is sent as an HTTP header)');
  }

  /** A URL setting (http or https unless `protocols` says otherwise). */
  url(name: string, protocols: readonly string[] = ['http:', 'https:']): string | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      return this.fail(name, v, `a URL like ${protocols[0]}//host:port`);
    }
    if (!protocols.includes(u.protocol)) return this.fail(name, v, `a ${protocols.join(' or ')} URL`);
    return v;
  }

  /** One of a fixed set of values. */
  oneOf<T extends string>(name: string, values: readonly T[]): T | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    const lower = v.toLowerCase();
    return (values as readonly string[]).includes(lower)
      ? (lower as T)
      : this.fail(name, v, `one of ${values.join(', ')}`);
  }

  /** A comma-separated list (trimmed, empties dropped). */
  list(name: string, delimiter = ','): string[] | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    return v
      .split(delimiter)
      .map((s) => s.trim())
      .filter((s) => s !== '');
  }
}

/** Drop keys whose value is undefined (for `exactOptionalPropertyTypes`). */
export function compact<T extends object>(obj: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  const out = {} as Record<string, unknown>;
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = v;
  return out as { [K in keyof T]: Exclude<T[K], undefined> };
}

function readSecret(dir: string, file: string): string {
  const path = join(dir, file);
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(
      'secret_mount_path',
      `basic_auth=true but ${path} cannot be read (${reason}): set secret_mount_path to the folder holding basic-auth-user and basic-auth-password`,
    );
  }
}

/** Default gateway of an OpenFaaS install, as the OpenFaaS connectors assume. */
export const DEFAULT_GATEWAY_URL = 'http://gateway.openfaas:8080';

/**
 * Read the OpenFaaS connector environment variables (`gateway_url`, `upstream_timeout`, `rebuild_interval`,
 * `topic_delimiter`, `async_invocation`, `basic_auth`, ..., and the delivery settings) into a typed config.
 * Throws a one-line ConfigError naming the first invalid variable.
 */
export function configFromEnv(env: Env = process.env): ConnectorConfig {
  const r = new EnvReader(env);
  const basicAuth = r.bool('basic_auth') ?? false;
  const secretPath = r.string('secret_mount_path') ?? '/var/secrets';
  const credentials = basicAuth
    ? {
        username: readSecret(secretPath, 'basic-auth-user'),
        password: readSecret(secretPath, 'basic-auth-password'),
      }
    : undefined;
  const delimiter = env['topic_delimiter'] ?? ',';
  if (delimiter === '') r.fail('topic_delimiter', delimiter, 'a non-empty separator such as ,');
  const retryOnStatus = r.list('retry_on_status')?.map((s) => {
    const n = Number(s);
    if (Number.isInteger(n) && n >= 100 && n <= 599) return n;
    return r.fail(
      'retry_on_status',
      env['retry_on_status'] ?? s,
      `HTTP status codes like 429,503 (${s} is not one)`,
    );
  });
  const retry = compact({
    maxRetries: r.int('max_retries', { min: 0, max: 1000 }),
    minDelay: r.duration('retry_min_delay'),
    maxDelay: r.duration('retry_max_delay'),
    retryOnStatus,
  });
  if (retry.minDelay !== undefined && retry.maxDelay !== undefined && retry.maxDelay < retry.minDelay) {
    r.fail(
      'retry_max_delay',
      env['retry_max_delay'] ?? '',
      `a duration >= retry_min_delay (${env['retry_min_delay']})`,
    );
  }
  const httpPort = r.int('http_port', { min: 0, max: 65535 }) ?? 8081;
  const matcher = r.oneOf('topic_matcher', ['exact', 'mqtt'] as const);
  return compact({
    gatewayUrl: r.url('gateway_url') ?? DEFAULT_GATEWAY_URL,
    upstreamTimeout: r.duration('upstream_timeout', { min: 1 }),
    rebuildInterval: r.duration('rebuild_interval', { min: 100 }),
    topicDelimiter: delimiter,
    asyncInvocation: r.bool('async_invocation'),
    asyncCallbackUrl: r.url('async_callback_url'),
    contentType: r.header('content_type'),
    credentials,
    userAgent: r.header('user_agent'),
    connectorName: r.header('connector_name'),
    systemTimeout: r.duration('system_timeout', { min: 1 }),
    maxResponseBytes: r.bytes('max_response_bytes'),
    maxPendingBytes: r.bytes('max_pending_bytes'),
    adaptiveConcurrency: r.bool('adaptive_concurrency'),
    namespace: r.string('namespace'),
    sendTopic: r.bool('send_topic'),
    topicMatcher: matcher,
    printResponse: r.bool('print_response'),
    printResponseBody: r.bool('print_response_body'),
    printRequestBody: r.bool('print_request_body'),
    printSync: r.bool('print_sync'),
    maxInFlight: r.int('max_inflight', { min: 1, max: 100_000 }),
    maxInFlightPerFunction: r.int('max_inflight_per_function', { min: 1, max: 100_000 }),
    retry: Object.keys(retry).length > 0 ? retry : undefined,
    onFailure: r.oneOf('on_failure', ['dead-letter', 'redeliver'] as const),
    deadLetterFile: r.string('dead_letter_file'),
    drainTimeout: r.duration('drain_timeout'),
    http: httpPort === 0 ? false : compact({ port: httpPort, host: r.string('http_host') }),
    logLevel:
      r.oneOf('log_level', ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const) ?? 'info',
  }) as ConnectorConfig;
}
