import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GatewayAuthOptions } from './auth.js';
import { CLOUDEVENTS_MODES, type CloudEventsMode } from './cloudevents.js';
import { ConfigError } from './errors.js';
import { isPlainHeaderValue } from './headers.js';
import { readSecret as readSecretSetting, registerSecret } from './secrets.js';

/** How annotation topics are compared with message topics. */
export type TopicMatcherOption = 'exact' | 'mqtt' | ((pattern: string, topic: string) => boolean);

/** Basic-auth credentials for the gateway's `/system` API. */
export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** Options of `createController`: how to discover and invoke functions (TLS and identity: `GatewayAuthOptions`). */
export interface ControllerOptions extends GatewayAuthOptions {
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
  /** Send each message as a CloudEvent: `binary` (`ce-` headers), `structured` (JSON envelope) or `off` (default). */
  cloudEvents?: CloudEventsMode;
  /** The `type` of the CloudEvents the connector makes (default `dev.connector.<source>.message`). */
  cloudEventsType?: string;
  /** Most function × topic entries in the topic map (default 100,000); functions past it are skipped, warned once. */
  maxTopicMapEntries?: number;
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
  /** Largest message body invoked, in bytes (default 16 MiB); a larger one is dead-lettered without its body. */
  maxMessageBytes?: number;
  /** Adaptive concurrency per function (AIMD on 429/503/deadlines) unless a function's annotation says otherwise. */
  adaptiveConcurrency?: boolean;
  /** How often the source's backlog (`Source.backlog`) is sampled into `connector_backlog_messages`, in ms
   * (default 15 s; 0 = never). */
  backlogInterval?: number;
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

/** The longest duration a setting may have: Node's longest timer (2^31-1 ms, about 596 h). */
export const MAX_DURATION_MS = 2 ** 31 - 1;

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

/** Every env name an `EnvReader` was asked for in this process: the names the readers know. */
const readNames = new Set<string>();

/** The env names `EnvReader`s have read so far (core's, the sources', the apps'). */
export function envNamesRead(): ReadonlySet<string> {
  return readNames;
}

/** Reads typed settings from an env map; every failure is a one-line ConfigError naming the variable. */
export class EnvReader {
  constructor(private readonly env: Env) {}

  /** The raw value, or undefined when unset or empty. */
  raw(name: string): string | undefined {
    readNames.add(name);
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

  /** A secret: env `name` or the file env `<name>_file` names (the one rule, `readSecret`); never logged unless
   * `redact: false` (a user name that may come from a file too). */
  secret(name: string, options?: { redact?: boolean }): string | undefined {
    return readSecretSetting(name, (n) => this.raw(n), options);
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
    // Node fires a timer of more than 2^31-1 ms after 1 ms: `rebuild_interval=1000h` would rebuild in a busy loop.
    if (ms > MAX_DURATION_MS)
      return this.fail(name, v, 'a duration of at most 596h (the longest timer Node keeps)');
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
    const value = readFileSync(path, 'utf8').trim();
    registerSecret(value);
    return value;
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
  const tokenFile = r.string('gateway_token_file');
  if (tokenFile !== undefined && basicAuth)
    throw new ConfigError(
      'gateway_token_file',
      'basic_auth=true and gateway_token_file are both set: choose basic auth or token auth for the gateway',
    );
  const exchangeRaw = r.raw('gateway_token_exchange');
  let tokenExchange: boolean | string | undefined;
  if (exchangeRaw !== undefined) {
    tokenExchange = parseBool(exchangeRaw);
    if (tokenExchange === undefined && /^https?:\/\//.test(exchangeRaw))
      tokenExchange = r.url('gateway_token_exchange');
    if (tokenExchange === undefined)
      r.fail(
        'gateway_token_exchange',
        exchangeRaw,
        'true, false or the token endpoint URL (https://gateway/oauth/token)',
      );
  }
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
    gatewayCaFile: r.string('gateway_ca_file'),
    gatewayCertFile: r.string('gateway_cert_file'),
    gatewayKeyFile: r.string('gateway_key_file'),
    gatewayTlsInsecure: r.bool('gateway_tls_insecure'),
    gatewayTokenFile: tokenFile,
    gatewayTokenExchange: tokenExchange,
    gatewayFunctionAuth: r.bool('gateway_function_auth'),
    userAgent: r.header('user_agent'),
    connectorName: r.header('connector_name'),
    systemTimeout: r.duration('system_timeout', { min: 1 }),
    maxResponseBytes: r.bytes('max_response_bytes'),
    cloudEvents: r.oneOf('cloudevents', CLOUDEVENTS_MODES),
    cloudEventsType: r.header('cloudevents_type'),
    maxTopicMapEntries: r.int('max_topic_map_entries', { min: 1 }),
    maxPendingBytes: r.bytes('max_pending_bytes'),
    maxMessageBytes: r.bytes('max_message_bytes'),
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
    backlogInterval: r.duration('backlog_interval'),
    http: httpPort === 0 ? false : compact({ port: httpPort, host: r.string('http_host') }),
    logLevel:
      r.oneOf('log_level', ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const) ?? 'info',
  }) as ConnectorConfig;
}

/** One environment setting of a connector: its name, its default (absent = unset), and what it does. */
export interface Setting {
  readonly name: string;
  readonly default?: string;
  readonly help: string;
}

/** The settings `configFromEnv` reads, with their defaults: what every connector's `--help` lists. */
export const CORE_SETTINGS: readonly Setting[] = [
  { name: 'gateway_url', default: DEFAULT_GATEWAY_URL, help: 'OpenFaaS gateway' },
  { name: 'basic_auth', default: 'false', help: 'read gateway credentials from secret_mount_path' },
  {
    name: 'secret_mount_path',
    default: '/var/secrets',
    help: 'folder of basic-auth-user and basic-auth-password',
  },
  { name: 'gateway_ca_file', help: 'PEM CA that signed the gateway certificate (private CA)' },
  { name: 'gateway_cert_file', help: 'PEM client certificate for mutual TLS (with gateway_key_file)' },
  { name: 'gateway_key_file', help: 'PEM key of gateway_cert_file' },
  {
    name: 'gateway_tls_insecure',
    default: 'false',
    help: 'do NOT verify the gateway certificate (logged as a warning)',
  },
  {
    name: 'gateway_token_file',
    help: 'identity token file (re-read when it changes): OpenFaaS IAM instead of basic_auth',
  },
  {
    name: 'gateway_token_exchange',
    default: 'true',
    help: 'exchange it at <gateway_url>/oauth/token (true), at this URL, or send it as is (false)',
  },
  {
    name: 'gateway_function_auth',
    default: 'false',
    help: 'send each function a function-scoped token (built-in function authentication)',
  },
  { name: 'upstream_timeout', default: '30s', help: 'deadline of one invocation' },
  { name: 'system_timeout', default: 'upstream_timeout, at most 30s', help: 'deadline of one /system call' },
  { name: 'max_response_bytes', default: '10MiB', help: 'largest function response kept' },
  { name: 'max_topic_map_entries', default: '100000', help: 'most function x topic pairs mapped' },
  { name: 'rebuild_interval', default: '30s', help: 'topic map refresh period' },
  { name: 'topic_delimiter', default: ',', help: 'separator of topics in the topic annotation' },
  { name: 'topic_matcher', default: 'exact', help: 'exact or mqtt (+ and # in annotations)' },
  { name: 'async_invocation', default: 'false', help: 'invoke through /async-function' },
  { name: 'async_callback_url', help: 'X-Callback-Url of async invocations' },
  { name: 'content_type', help: 'Content-Type of invocations' },
  {
    name: 'cloudevents',
    default: 'off',
    help: 'send each message as a CloudEvent: binary (ce- headers), structured (JSON) or off',
  },
  {
    name: 'cloudevents_type',
    default: 'dev.connector.<source>.message',
    help: 'type of the CloudEvents made',
  },
  { name: 'user_agent', default: 'connector/<connector_name>', help: 'User-Agent of requests' },
  { name: 'connector_name', help: 'X-Connector header and logger name (default: the app name)' },
  { name: 'namespace', help: 'only functions of this namespace' },
  { name: 'send_topic', default: 'true', help: 'send X-Topic' },
  { name: 'print_response', default: 'false', help: 'log every invocation result' },
  { name: 'print_response_body', default: 'false', help: 'include response bodies' },
  { name: 'print_request_body', default: 'false', help: 'log request bodies' },
  { name: 'print_sync', default: 'false', help: 'log the topic map after every rebuild' },
  { name: 'max_inflight', default: '64', help: 'invocations in flight' },
  { name: 'max_pending_bytes', default: '64MiB', help: 'message bytes accepted and not yet settled' },
  { name: 'max_message_bytes', default: '16MiB', help: 'largest message invoked (larger: dead-lettered)' },
  { name: 'adaptive_concurrency', default: 'false', help: 'per-function in-flight limit that adapts (AIMD)' },
  { name: 'max_inflight_per_function', help: 'invocations in flight per function (default unlimited)' },
  { name: 'max_retries', default: '3', help: 'retries after the first attempt' },
  { name: 'retry_min_delay', default: '100ms', help: 'first retry delay' },
  { name: 'retry_max_delay', default: '10s', help: 'retry delay cap' },
  { name: 'retry_on_status', default: '408,429,502,503,504', help: 'statuses that are retried' },
  { name: 'on_failure', default: 'redeliver', help: 'redeliver or dead-letter after the last retry' },
  { name: 'dead_letter_file', help: 'append dead letters to this JSONL file' },
  { name: 'drain_timeout', default: '30s', help: 'how long a stop waits for in-flight deliveries' },
  {
    name: 'backlog_interval',
    default: '15s',
    help: 'how often the broker backlog (lag, queue depth) is sampled for metrics (0 = off)',
  },
  { name: 'http_port', default: '8081', help: '/healthz /readyz /metrics port (0 = off)' },
  { name: 'http_host', default: '0.0.0.0', help: 'address of that endpoint' },
  { name: 'log_level', default: 'info', help: 'trace, debug, info, warn, error, fatal or silent' },
];

/** True when the command line asks for help: `--help`, `-h`, `-help` or `help`. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.some((a) => a === '--help' || a === '-h' || a === '-help' || a === 'help');
}

/** The text of a connector's `--help`: its own settings, then core's, each with its default. */
export function settingsHelp(name: string, settings: readonly Setting[], usage?: string): string {
  const rows = (list: readonly Setting[]) => {
    const width = Math.max(...list.map((s) => s.name.length)) + 2;
    const dwidth = Math.max(...list.map((s) => (s.default ?? '').length)) + 2;
    return list
      .map((s) => `  ${s.name.padEnd(width)}${(s.default ?? '').padEnd(dwidth)}${s.help}`)
      .join('\n');
  };
  const own =
    settings.length > 0 ? `${name} settings (env name, default, meaning):\n${rows(settings)}\n\n` : '';
  return `usage: ${usage ?? `[env settings] ${name}`}\n\n${own}connector settings (every connector):\n${rows(CORE_SETTINGS)}\n`;
}

const normal = (s: string) => s.toLowerCase().replace(/[-_]/g, '');

/** Damerau-Levenshtein (optimal string alignment) distance: a swap of two letters counts once. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] as number[];
    const prev = d[i - 1] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, ((d[i - 2] as number[])[j - 2] as number) + 1);
      row[j] = v;
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

/**
 * The known name `name` is probably a misspelling of, if any: the same name in another case or with `-`/`_`
 * (`GATEWAY_URL`, `httpport`), at most 2 edits away (fewer for short names: a third of the length), or another
 * connector's longer/shorter spelling of it (`broker_host` or `brokers` for `broker`, `httpPort` for `http`).
 */
export function closestName(name: string, known: Iterable<string>): string | undefined {
  const n = normal(name);
  let best: { name: string; score: number } | undefined;
  for (const k of known) {
    const kn = normal(k);
    if (kn === '') continue;
    let score: number | undefined;
    if (kn === n) score = 0;
    else {
      const dist = editDistance(n, kn);
      if (dist <= Math.min(2, Math.floor(kn.length / 3))) score = dist;
      else if (Math.min(n.length, kn.length) >= 4 && (n.startsWith(kn) || kn.startsWith(n))) score = 3;
    }
    if (score !== undefined && (best === undefined || score < best.score)) best = { name: k, score };
  }
  return best?.name;
}

/** An env name that is not a known setting but looks like one, and the known name it probably means. */
export interface SettingSuggestion {
  readonly name: string;
  readonly suggestion: string;
}

/**
 * Env names that look like a known setting but are not one (misspelt, wrong case, another connector's name).
 * Upper-case names (the convention of system variables such as HOME or PATH) count only when they are a known
 * name in the wrong case.
 */
export function unknownSettings(known: Iterable<string>, env: Env): SettingSuggestion[] {
  const names = new Set(known);
  const out: SettingSuggestion[] = [];
  for (const name of Object.keys(env)) {
    if (names.has(name)) continue;
    const upper = name === name.toUpperCase();
    const suggestion = closestName(name, names);
    if (suggestion === undefined) continue;
    if (upper && normal(suggestion) !== normal(name)) continue;
    out.push({ name, suggestion });
  }
  return out;
}

/** Every option key of `createController`, `createConnector` and `runConnector` (a `configFromEnv` result spreads into each). */
export const OPTION_KEYS = [
  // ControllerOptions
  'gatewayUrl',
  'upstreamTimeout',
  'rebuildInterval',
  'topicDelimiter',
  'asyncInvocation',
  'asyncCallbackUrl',
  'contentType',
  'credentials',
  'gatewayCaFile',
  'gatewayCertFile',
  'gatewayKeyFile',
  'gatewayTlsInsecure',
  'gatewayTokenFile',
  'gatewayTokenExchange',
  'gatewayFunctionAuth',
  'userAgent',
  'connectorName',
  'namespace',
  'sendTopic',
  'topicMatcher',
  'printResponse',
  'printResponseBody',
  'printRequestBody',
  'printSync',
  'connections',
  'systemTimeout',
  'maxResponseBytes',
  'cloudEvents',
  'cloudEventsType',
  'maxTopicMapEntries',
  // DeliveryOptions
  'maxInFlight',
  'maxInFlightPerFunction',
  'retry',
  'onFailure',
  'deadLetterFile',
  'drainTimeout',
  'maxPendingBytes',
  'maxMessageBytes',
  'adaptiveConcurrency',
  'backlogInterval',
  // ConnectorConfig, ConnectorOptions, RunOptions
  'http',
  'logLevel',
  'logger',
  'controller',
  'source',
  'deadLetter',
  'registry',
  'restartDelay',
  'signals',
  'exit',
] as const;

// A compile error when ConnectorConfig gains an option OPTION_KEYS does not list (connector.ts checks RunOptions).
const configKeysListed: [Exclude<keyof ConnectorConfig, (typeof OPTION_KEYS)[number]>] extends [never]
  ? true
  : never = true;
void configKeysListed;

/**
 * Refuse option keys that no option has (plain JavaScript callers get no compile-time check): a one-line
 * ConfigError naming the key and the option it probably means, e.g. `httpPort` → `http`.
 */
export function checkOptionKeys(what: string, options: object, known: readonly string[] = OPTION_KEYS): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const close = closestName(key, known);
    throw new ConfigError(
      key,
      `unknown option ${key} for ${what}${close === undefined ? '' : `; did you mean ${close}?`}`,
    );
  }
}
