import {
  ConfigError,
  type Env,
  EnvReader,
  parseDuration,
  readTlsFiles,
  redactUrl,
  registerSecret,
} from '@connector/core';
import { bindingKeyProblem } from './routing.js';

/** TLS settings for `amqps://` (PEM contents, not paths; `rabbitmqOptionsFromEnv` reads the files). */
export interface RabbitmqTlsOptions {
  /** CA certificate(s) that sign the broker's certificate. */
  ca?: string | Buffer;
  /** Client certificate for mutual TLS (needs `key`). */
  cert?: string | Buffer;
  /** Client private key for mutual TLS (needs `cert`). */
  key?: string | Buffer;
  /** Verify the broker's certificate (default true). */
  rejectUnauthorized?: boolean;
  /** SNI / certificate host name, when it differs from the URL's host. */
  servername?: string;
}

/** A queue to consume in `queues` mode (the OpenFaaS Pro connector's `queues` entries). */
export interface RabbitmqQueueSpec {
  /** Queue name; also the topic its messages are routed on. */
  name: string;
  /** Survives a broker restart (default true). */
  durable?: boolean;
  /** Deleted by the broker when its last consumer goes (default false). */
  autoDelete?: boolean;
  /** Only this connection may use it; deleted when it closes (default false). */
  exclusive?: boolean;
  /** Extra `x-` arguments of the queue declaration. */
  arguments?: Readonly<Record<string, unknown>>;
}

/** Options of `rabbitmqSource`. Durations are milliseconds. */
export interface RabbitmqSourceOptions {
  /** Broker URL: `amqp://[user:password@]host[:5672][/vhost]` or `amqps://...`. */
  url: string;
  /** User name (overrides the URL's). */
  username?: string;
  /** Password (overrides the URL's; never logged). */
  password?: string;
  /** TLS settings for `amqps://`. */
  tls?: RabbitmqTlsOptions;
  /** The connector's durable queue, bound to `exchange` (default `rabbitmq-connector`). */
  queue?: string;
  /** Consume these existing or declared queues instead of `queue`, each message routed on its queue's name
   * (OpenFaaS Pro connector semantics); nothing is bound. */
  queues?: readonly (string | RabbitmqQueueSpec)[];
  /** Topic exchange `queue` is bound to (default `amq.topic`, which every RabbitMQ vhost has). */
  exchange?: string;
  /** Declare `exchange` as a durable topic exchange (default true, except for the predeclared `amq.*`). */
  declareExchange?: boolean;
  /** Fixed binding keys (`*` one word, `#` zero or more). Default: the functions' topics, followed as they change. */
  topics?: readonly string[];
  /** Unacknowledged messages the broker may push to the source per queue (default 64, the engine's default
   * `maxInFlight`: tie it to the connector's capacity). */
  prefetch?: number;
  /** Queue type of `queue` (default `classic`). */
  queueType?: 'classic' | 'quorum';
  /** Quorum queues: redeliveries before the broker drops or dead-letters a message (`x-delivery-limit`). */
  deliveryLimit?: number;
  /** Extra `x-` arguments for declaring `queue`. */
  queueArguments?: Readonly<Record<string, unknown>>;
  /** Failed deliveries are rejected into this exchange (`x-dead-letter-exchange` of `queue`) instead of requeued;
   * with a quorum `deliveryLimit` they are requeued and the broker dead-letters them once over the limit. */
  deadLetterExchange?: string;
  /** Routing key dead letters are published with (`x-dead-letter-routing-key`; default: their own). */
  deadLetterRoutingKey?: string;
  /** Back-off before a failed delivery is requeued (no dead-letter exchange): `min` (default 1 s) doubling up to
   * `max` (default 30 s) while deliveries keep failing. */
  redeliveryDelay?: { min?: number; max?: number };
  /** Reconnect back-off: `min` (default 500 ms) doubling up to `max` (default 30 s). */
  reconnectDelay?: { min?: number; max?: number };
  /** AMQP heartbeat (default 60 s; 0 disables it; rounded to seconds). */
  heartbeat?: number;
  /** TCP + AMQP handshake timeout (default 30 s). */
  connectTimeout?: number;
  /** Publish the first function's response to a message's `reply-to` queue, only when the queue name matches one
   * of these patterns (`*` one word, `#` zero or more, as binding keys). Default: never reply. */
  replyTo?: { allow: readonly string[] };
  /** Connection name shown in the RabbitMQ management UI (default `@connector/source-rabbitmq`). */
  connectionName?: string;
}

/** A queue the source consumes, with its declaration. */
export interface ResolvedQueue {
  name: string;
  durable: boolean;
  autoDelete: boolean;
  exclusive: boolean;
  arguments: Readonly<Record<string, unknown>>;
  /** Bound to the exchange by the binding keys (the connector's own queue), or consumed as it is. */
  bound: boolean;
}

/** Options with every default applied, as the source uses them. */
export interface ResolvedRabbitmqOptions {
  url: URL;
  username: string;
  password: string;
  vhost: string;
  tls: RabbitmqTlsOptions | undefined;
  queues: readonly ResolvedQueue[];
  exchange: string;
  declareExchange: boolean;
  topics: readonly string[] | undefined;
  prefetch: number;
  deadLetterExchange: string | undefined;
  /** Failed deliveries are requeued (after the back-off) rather than rejected into the dead-letter exchange: no
   * dead-letter exchange, or a quorum queue's delivery limit decides when the broker dead-letters them. */
  requeueFailed: boolean;
  redeliveryDelay: { min: number; max: number };
  reconnectDelay: { min: number; max: number };
  heartbeat: number;
  connectTimeout: number;
  replyTo: readonly string[];
  connectionName: string;
}

/** Default queue name (the app uses env `connector_name` when set). */
export const DEFAULT_QUEUE = 'rabbitmq-connector';
/** Default exchange: the topic exchange every RabbitMQ vhost predeclares. */
export const DEFAULT_EXCHANGE = 'amq.topic';

const invalid = (name: string, value: unknown, expected: string): never => {
  throw ConfigError.invalid(name, value, expected);
};

/** The URL for logs and error messages: core's `redactUrl` (the password hidden, the user name kept). */
export { redactUrl };

/** Parse a broker URL, or throw a ConfigError naming `setting` (the password is never shown). */
export function parseRabbitmqUrl(setting: string, value: string): URL {
  let u: URL;
  try {
    u = new URL(value.trim());
  } catch {
    return invalid(setting, '<unparseable>', 'a URL like amqp://host:5672 or amqps://host:5671/vhost');
  }
  if (u.protocol !== 'amqp:' && u.protocol !== 'amqps:')
    return invalid(setting, redactUrl(u), 'an amqp:// or amqps:// URL');
  if (u.hostname === '') return invalid(setting, redactUrl(u), 'a URL with a host, like amqp://host:5672');
  return u;
}

/** Why `name` cannot be a queue name, or undefined (AMQP short string, no `amq.` prefix: reserved). */
export function queueNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || name === '') return 'a non-empty queue name';
  if (Buffer.byteLength(name, 'utf8') > 255) return 'a queue name of at most 255 bytes';
  if (name.startsWith('amq.')) return "a queue name not starting with 'amq.' (reserved by the broker)";
  return undefined;
}

function checkMs(name: string, v: number | undefined, min = 0): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min)
    invalid(name, v, `a number of milliseconds >= ${min}`);
}

function checkInt(name: string, v: number | undefined, min: number, max: number): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    invalid(name, v, `an integer from ${min} to ${max}`);
}

function checkName(name: string, v: unknown): void {
  if (v === undefined) return;
  if (typeof v !== 'string' || v === '' || Buffer.byteLength(v, 'utf8') > 255)
    invalid(name, v, 'a name of 1 to 255 bytes');
}

function checkKeys(name: string, keys: readonly string[]): void {
  if (!Array.isArray(keys)) invalid(name, keys, 'a list of binding keys');
  for (const k of keys) {
    const problem = bindingKeyProblem(k);
    if (problem) invalid(name, k, problem);
  }
}

function delay(name: string, d: { min?: number; max?: number } | undefined, min: number, max: number) {
  checkMs(`${name}.min`, d?.min, 0);
  checkMs(`${name}.max`, d?.max, 1);
  const lo = d?.min ?? min;
  return { min: lo, max: Math.max(d?.max ?? max, lo) };
}

function resolveQueue(spec: string | RabbitmqQueueSpec, i: number): ResolvedQueue {
  const s: RabbitmqQueueSpec = typeof spec === 'string' ? { name: spec.trim() } : spec;
  if (typeof s !== 'object' || s === null)
    return invalid(`queues[${i}]`, spec, 'a queue name or { name, ... }');
  const problem = queueNameProblem(s.name);
  if (problem) invalid(`queues[${i}].name`, s.name, problem);
  return {
    name: s.name,
    durable: s.durable ?? true,
    autoDelete: s.autoDelete ?? false,
    exclusive: s.exclusive ?? false,
    arguments: { ...s.arguments },
    bound: false,
  };
}

/** Validate options and fill in defaults; throws a one-line ConfigError naming the first invalid option. */
export function resolveRabbitmqOptions(options: RabbitmqSourceOptions): ResolvedRabbitmqOptions {
  if (typeof options !== 'object' || options === null) invalid('options', options, 'an options object');
  if (typeof options.url !== 'string' || options.url.trim() === '')
    throw ConfigError.missing('url', 'a broker URL like amqp://host:5672');
  const url = parseRabbitmqUrl('url', options.url);
  registerSecret(options.password); // never in a log line, however the options were built
  registerSecret(url.href);
  const username = options.username ?? (url.username === '' ? 'guest' : decodeURIComponent(url.username));
  const password = options.password ?? (url.password === '' ? 'guest' : decodeURIComponent(url.password));
  const path = url.pathname.replace(/^\//, '');
  const vhost = path === '' ? '/' : decodeURIComponent(path);

  const tls = options.tls;
  if (tls !== undefined) {
    if ((tls.cert === undefined) !== (tls.key === undefined))
      invalid('tls', tls.cert === undefined ? 'key only' : 'cert only', 'both cert and key (mutual TLS)');
    if ((tls.ca !== undefined || tls.cert !== undefined) && url.protocol !== 'amqps:')
      invalid('url', redactUrl(url), 'an amqps:// URL when TLS certificates are set');
  }

  if (options.queueType !== undefined && options.queueType !== 'classic' && options.queueType !== 'quorum')
    invalid('queueType', options.queueType, 'classic or quorum');
  checkInt('deliveryLimit', options.deliveryLimit, 0, 2 ** 31 - 1);
  if (options.deliveryLimit !== undefined && options.queueType !== 'quorum')
    invalid(
      'deliveryLimit',
      options.deliveryLimit,
      'queueType quorum (classic queues have no delivery limit)',
    );
  checkName('deadLetterExchange', options.deadLetterExchange);
  if (options.deadLetterRoutingKey !== undefined && options.deadLetterExchange === undefined)
    invalid('deadLetterRoutingKey', options.deadLetterRoutingKey, 'a deadLetterExchange to go with it');
  checkName('deadLetterRoutingKey', options.deadLetterRoutingKey);
  checkName('exchange', options.exchange);
  if (options.exchange === '') invalid('exchange', '', 'a topic exchange (the default exchange cannot bind)');

  let queues: ResolvedQueue[];
  if (options.queues !== undefined) {
    if (!Array.isArray(options.queues) || options.queues.length === 0)
      invalid('queues', options.queues, 'at least one queue (or leave it unset for the connector queue)');
    queues = options.queues.map(resolveQueue);
    if (options.topics !== undefined)
      invalid(
        'topics',
        options.topics.join(','),
        'no topics with queues (their messages route on the queue name)',
      );
  } else {
    const name = options.queue ?? DEFAULT_QUEUE;
    const problem = queueNameProblem(name);
    if (problem) invalid('queue', name, problem);
    const args: Record<string, unknown> = { ...options.queueArguments };
    if (options.queueType === 'quorum') args['x-queue-type'] = 'quorum';
    if (options.deliveryLimit !== undefined) args['x-delivery-limit'] = options.deliveryLimit;
    if (options.deadLetterExchange !== undefined) args['x-dead-letter-exchange'] = options.deadLetterExchange;
    if (options.deadLetterRoutingKey !== undefined)
      args['x-dead-letter-routing-key'] = options.deadLetterRoutingKey;
    queues = [{ name, durable: true, autoDelete: false, exclusive: false, arguments: args, bound: true }];
  }
  const names = queues.map((q) => q.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) invalid('queues', dup, 'each queue once');

  if (options.topics !== undefined) {
    checkKeys('topics', options.topics);
    if (options.topics.length === 0)
      invalid('topics', '', 'at least one binding key (or leave it unset to follow the functions)');
  }
  checkInt('prefetch', options.prefetch, 1, 65535);
  checkMs('heartbeat', options.heartbeat, 0);
  checkMs('connectTimeout', options.connectTimeout, 1);
  const replyTo = options.replyTo?.allow ?? [];
  if (options.replyTo !== undefined) {
    checkKeys('replyTo.allow', replyTo);
    if (replyTo.length === 0) invalid('replyTo.allow', '', 'at least one allowed reply-to queue pattern');
  }
  const exchange = options.exchange ?? DEFAULT_EXCHANGE;
  return {
    url,
    username,
    password,
    vhost,
    tls,
    queues,
    exchange,
    declareExchange: options.declareExchange ?? !exchange.startsWith('amq.'),
    topics: options.topics === undefined ? undefined : [...new Set(options.topics)],
    prefetch: options.prefetch ?? 64,
    deadLetterExchange: options.queues === undefined ? options.deadLetterExchange : undefined,
    requeueFailed:
      options.queues !== undefined ||
      options.deadLetterExchange === undefined ||
      options.deliveryLimit !== undefined,
    redeliveryDelay: delay('redeliveryDelay', options.redeliveryDelay, 1000, 30_000),
    reconnectDelay: delay('reconnectDelay', options.reconnectDelay, 500, 30_000),
    heartbeat: options.heartbeat ?? 60_000,
    connectTimeout: options.connectTimeout ?? 30_000,
    replyTo,
    connectionName: options.connectionName ?? '@connector/source-rabbitmq',
  };
}

function durationOrSeconds(r: EnvReader, name: string): number | undefined {
  const v = r.raw(name);
  if (v === undefined) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  return parseDuration(v) ?? r.fail(name, v, 'a duration like 30s or a number of seconds');
}

/** Parse env `queues`: the OpenFaaS Pro chart's JSON list (`[{"name":"q1","durable":true}]`) or `q1,q2`. */
export function parseQueues(value: string): (string | RabbitmqQueueSpec)[] {
  const v = value.trim();
  if (!v.startsWith('['))
    return v
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    return invalid('queues', v, 'a JSON list like [{"name":"q1","durable":true}] or names like q1,q2');
  }
  if (!Array.isArray(parsed)) return invalid('queues', v, 'a JSON list of queues');
  return parsed.map((q: unknown, i): string | RabbitmqQueueSpec => {
    if (typeof q === 'string') return q;
    if (typeof q !== 'object' || q === null || typeof (q as { name?: unknown }).name !== 'string')
      return invalid(`queues[${i}]`, JSON.stringify(q), 'an object with a name');
    const o = q as Record<string, unknown>;
    const bool = (k: string): boolean | undefined => {
      const b = o[k];
      if (b === undefined || b === null) return undefined;
      return typeof b === 'boolean' ? b : invalid(`queues[${i}].${k}`, String(b), 'true or false');
    };
    const spec: RabbitmqQueueSpec = { name: o['name'] as string };
    const durable = bool('durable');
    const autoDelete = bool('autodelete') ?? bool('autoDelete');
    const exclusive = bool('exclusive');
    if (durable !== undefined) spec.durable = durable;
    if (autoDelete !== undefined) spec.autoDelete = autoDelete;
    if (exclusive !== undefined) spec.exclusive = exclusive;
    return spec;
  });
}

/**
 * Read the RabbitMQ connector's environment — the OpenFaaS Pro connector's names (`rabbitmq_url`, `queues`,
 * `topics`, `username_file`, `password_file`, `ca_file`, `cert_file`, `key_file`) plus ours (`queue`, `exchange`,
 * `prefetch`, `dead_letter_exchange`, `queue_type`, `reply_to_allow`, ...) — into `rabbitmqSource` options.
 * Throws a one-line ConfigError; passwords never appear in it.
 */
export function rabbitmqOptionsFromEnv(env: Env = process.env): RabbitmqSourceOptions {
  const r = new EnvReader(env);
  const raw = r.secret('rabbitmq_url'); // may carry user:password, so rabbitmq_url_file too
  if (raw === undefined)
    throw ConfigError.missing('rabbitmq_url', 'a URL like amqp://rabbitmq:5672 (set env rabbitmq_url)');
  parseRabbitmqUrl('rabbitmq_url', raw);
  const opts: RabbitmqSourceOptions = { url: raw };
  const set = <K extends keyof RabbitmqSourceOptions>(k: K, v: RabbitmqSourceOptions[K] | undefined) => {
    if (v !== undefined) opts[k] = v;
  };
  set('username', r.secret('username', { redact: false }));
  set('password', r.secret('password'));
  const tls: RabbitmqTlsOptions = readTlsFiles({
    ca: r.string('ca_file'),
    cert: r.string('cert_file'),
    key: r.string('key_file'),
  });
  const rejectUnauthorized = r.bool('reject_unauthorized');
  if (rejectUnauthorized !== undefined) tls.rejectUnauthorized = rejectUnauthorized;
  set('tls', Object.keys(tls).length > 0 ? tls : undefined);

  const queues = r.raw('queues');
  if (queues !== undefined && queues !== '[]') set('queues', parseQueues(queues));
  else set('queue', r.string('queue') ?? r.string('connector_name'));
  const topics = r.list('topics');
  if (topics !== undefined && opts.queues === undefined) checkKeys('topics', topics);
  set('topics', opts.queues === undefined ? topics : undefined);
  set('exchange', r.string('exchange'));
  set('declareExchange', r.bool('exchange_declare'));
  set('prefetch', r.int('prefetch', { min: 1, max: 65535 }) ?? r.int('max_inflight', { min: 1, max: 65535 }));
  set('queueType', r.oneOf('queue_type', ['classic', 'quorum'] as const));
  set('deliveryLimit', r.int('delivery_limit', { min: 0, max: 2 ** 31 - 1 }));
  set('deadLetterExchange', r.string('dead_letter_exchange'));
  set('deadLetterRoutingKey', r.string('dead_letter_routing_key'));
  const backoff = (min: string, max: string) => {
    const d: { min?: number; max?: number } = {};
    const lo = r.duration(min);
    const hi = r.duration(max, { min: 1 });
    if (lo !== undefined) d.min = lo;
    if (hi !== undefined) d.max = hi;
    return Object.keys(d).length > 0 ? d : undefined;
  };
  set('redeliveryDelay', backoff('redelivery_delay', 'redelivery_delay_max'));
  set('reconnectDelay', backoff('reconnect_delay', 'reconnect_delay_max'));
  set('heartbeat', durationOrSeconds(r, 'heartbeat'));
  set('connectTimeout', r.duration('connect_timeout', { min: 1 }));
  const replyTo = r.bool('reply_to');
  const allow = r.list('reply_to_allow');
  if (replyTo === true && allow === undefined)
    throw ConfigError.missing(
      'reply_to_allow',
      'the reply-to queues (patterns) replies may go to when reply_to=true',
    );
  if (allow !== undefined && replyTo !== false) set('replyTo', { allow });
  set('connectionName', r.string('connection_name') ?? r.string('connector_name'));
  resolveRabbitmqOptions(opts);
  return opts;
}
