import { ConfigError, type Env, EnvReader, readTlsFiles, redactUrl, registerSecret } from '@connector/core';
import { subjectProblem } from './subjects.js';

/** `jetstream`: durable pull consumer, acked after delivery (at-least-once); `core`: plain subscription (at-most-once). */
export type NatsMode = 'jetstream' | 'core';

/** Where a new JetStream consumer starts (only used when the source creates the consumer). */
export type NatsDeliverPolicy = 'all' | 'new' | 'last' | 'last_per_subject';

/** Credentials for the NATS server; at most one kind (user/password, token, nkey seed or a `.creds` file). */
export interface NatsAuthOptions {
  /** User name (with `password`). */
  user?: string;
  /** Password (never logged). */
  password?: string;
  /** Token. */
  token?: string;
  /** NKey seed (`SU...`). */
  nkeySeed?: string;
  /** Contents of a `.creds` file (user JWT + nkey seed). */
  creds?: string;
}

/** TLS settings (PEM contents; `natsOptionsFromEnv` reads the files). */
export interface NatsTlsOptions {
  /** CA certificate(s) that sign the server's certificate. */
  ca?: string;
  /** Client certificate for mutual TLS (needs `key`). */
  cert?: string;
  /** Client private key for mutual TLS (needs `cert`). */
  key?: string;
}

/** Options of `natsSource`. Durations are milliseconds. */
export interface NatsSourceOptions {
  /** Server URL(s): `nats://host:4222`, `tls://host:4222`, or `host[:port]`; several for fail-over. */
  servers: string | readonly string[];
  /** `jetstream` (default) or `core` (at-most-once, no acks). */
  mode?: NatsMode;
  /** Subjects to consume (NATS wildcards `*` and `>` allowed). Default: the functions' topics, followed live. */
  subjects?: readonly string[];
  /** JetStream stream name (required in `jetstream` mode). */
  stream?: string;
  /** Durable consumer name (default `openfaas-nats-connector`). */
  consumer?: string;
  /** Create the stream when it does not exist (default true), with `subjects` (or the functions' topics). */
  createStream?: boolean;
  /** Where a consumer the source creates starts (default `all`). */
  deliverPolicy?: NatsDeliverPolicy;
  /** Consumer ack wait (default 30 s): a message not acked (nor `working()`) in time is redelivered. */
  ackWait?: number;
  /** Consumer max_ack_pending: messages out for delivery at once (default 64; tie it to the engine's max_inflight). */
  maxAckPending?: number;
  /** Consumer max_deliver (default -1: unlimited; the connector's retries and dead letters decide). */
  maxDeliver?: number;
  /** Messages asked for per pull request (default 10, at most `maxAckPending`): what an open pull may still take
   * after the connector ran out of capacity. */
  batch?: number;
  /** How long one pull request waits for messages (default 5 s). */
  fetchExpires?: number;
  /** Back-off of a failed delivery's `nak`: from `min` (default 1 s) doubling with the delivery count up to `max` (60 s). */
  nakDelay?: { min?: number; max?: number };
  /** Core mode: queue group, so replicas split the messages (default none: every replica gets every message). */
  queue?: string;
  /** Publish the first function's response to a message's reply subject (default false). */
  reply?: boolean;
  /** Reply subjects the source may publish to (NATS wildcards); required with `reply`. */
  replySubjects?: readonly string[];
  /** Credentials. */
  auth?: NatsAuthOptions;
  /** TLS (implied by `tls://` URLs). */
  tls?: NatsTlsOptions;
  /** Client connection name shown by the server (default `openfaas-nats-connector`). */
  name?: string;
  /** Reconnect wait between attempts (default 2 s); the source reconnects for ever. */
  reconnectWait?: number;
}

/** Options with every default applied, as the source uses them. */
export interface ResolvedNatsOptions {
  servers: readonly string[];
  mode: NatsMode;
  subjects: readonly string[] | undefined;
  stream: string | undefined;
  consumer: string;
  createStream: boolean;
  deliverPolicy: NatsDeliverPolicy;
  ackWait: number;
  maxAckPending: number;
  maxDeliver: number;
  batch: number;
  fetchExpires: number;
  nakDelay: { min: number; max: number };
  queue: string | undefined;
  reply: boolean;
  replySubjects: readonly string[];
  auth: NatsAuthOptions;
  tls: NatsTlsOptions | undefined;
  name: string;
  reconnectWait: number;
}

/** Default durable consumer name (stable, so a restarted connector resumes where it left off). */
export const DEFAULT_CONSUMER = 'openfaas-nats-connector';

const NAME_RE = /^[^\s.*>/\\]+$/;
const DELIVER_POLICIES: readonly NatsDeliverPolicy[] = ['all', 'new', 'last', 'last_per_subject'];

/** Normalise one server: `host`, `host:port`, `nats://host:port`, `tls://host:port` (or throw naming `setting`). */
export function parseServer(setting: string, value: string): string {
  const v = value.trim();
  const withScheme = /^[a-z]+:\/\//i.test(v) ? v : `nats://${v}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw ConfigError.invalid(setting, redactServer(value), 'a server like nats://host:4222 or host[:port]');
  }
  if (!['nats:', 'tls:'].includes(u.protocol) || u.hostname === '')
    throw ConfigError.invalid(setting, redactServer(value), 'a nats:// or tls:// URL, or host[:port]');
  return withScheme;
}

/** A server address for logs and errors (`nats://…` or `host[:port]`): core's `redactUrl` (the password hidden). */
export const redactServer = (server: string): string => redactUrl(server);

function checkSubjects(setting: string, list: readonly string[]): void {
  if (!Array.isArray(list)) throw ConfigError.invalid(setting, list, 'a list of subjects');
  for (const s of list) {
    const problem = typeof s === 'string' ? subjectProblem(s) : 'subjects as strings';
    if (problem) throw ConfigError.invalid(setting, s, problem);
  }
}

function checkNumber(
  setting: string,
  v: number | undefined,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
    throw ConfigError.invalid(setting, v, `a number from ${min} to ${max}`);
}

/** Validate options and fill in defaults; throws a one-line ConfigError naming the first invalid option. */
export function resolveNatsOptions(options: NatsSourceOptions): ResolvedNatsOptions {
  if (typeof options !== 'object' || options === null)
    throw ConfigError.invalid('options', options, 'an options object');
  const list = typeof options.servers === 'string' ? options.servers.split(',') : options.servers;
  if (!Array.isArray(list) || list.every((s) => typeof s !== 'string' || s.trim() === ''))
    throw ConfigError.missing('servers', 'a server URL like nats://host:4222');
  const servers = list.filter((s) => s.trim() !== '').map((s) => parseServer('servers', s));
  const mode = options.mode ?? 'jetstream';
  if (mode !== 'jetstream' && mode !== 'core') throw ConfigError.invalid('mode', mode, 'jetstream or core');
  if (options.subjects !== undefined) {
    checkSubjects('subjects', options.subjects);
    if (options.subjects.length === 0)
      throw ConfigError.invalid(
        'subjects',
        '',
        'at least one subject (or leave it unset to follow the functions)',
      );
  }
  if (mode === 'jetstream') {
    if (options.stream === undefined)
      throw ConfigError.missing('stream', 'a JetStream stream name (or mode=core)');
    if (typeof options.stream !== 'string' || !NAME_RE.test(options.stream))
      throw ConfigError.invalid('stream', options.stream, "a stream name without spaces, '.', '*', '>', '/'");
  }
  const consumer = options.consumer ?? DEFAULT_CONSUMER;
  if (typeof consumer !== 'string' || !NAME_RE.test(consumer))
    throw ConfigError.invalid('consumer', consumer, "a consumer name without spaces, '.', '*', '>', '/'");
  const deliverPolicy = options.deliverPolicy ?? 'all';
  if (!DELIVER_POLICIES.includes(deliverPolicy))
    throw ConfigError.invalid('deliverPolicy', deliverPolicy, DELIVER_POLICIES.join(', '));
  checkNumber('ackWait', options.ackWait, 100);
  checkNumber('maxAckPending', options.maxAckPending, 1, 1_000_000);
  if (options.maxDeliver !== undefined && options.maxDeliver !== -1)
    checkNumber('maxDeliver', options.maxDeliver, 2);
  checkNumber('batch', options.batch, 1, 10_000);
  checkNumber('fetchExpires', options.fetchExpires, 1000);
  checkNumber('nakDelay.min', options.nakDelay?.min, 0);
  checkNumber('nakDelay.max', options.nakDelay?.max, 0);
  checkNumber('reconnectWait', options.reconnectWait, 10);
  const reply = options.reply ?? false;
  const replySubjects = options.replySubjects ?? [];
  checkSubjects('replySubjects', replySubjects);
  if (reply && mode === 'jetstream')
    throw ConfigError.invalid(
      'reply',
      true,
      'reply only with mode=core (JetStream does not keep reply subjects)',
    );
  if (reply && replySubjects.length === 0)
    throw ConfigError.missing(
      'replySubjects',
      'the reply subjects the connector may publish to (e.g. _INBOX.>)',
    );
  if (options.queue !== undefined && (typeof options.queue !== 'string' || !NAME_RE.test(options.queue)))
    throw ConfigError.invalid('queue', options.queue, 'a queue group name without spaces or wildcards');
  const auth = options.auth ?? {};
  const kinds = [
    auth.user !== undefined || auth.password !== undefined ? 'user/password' : undefined,
    auth.token !== undefined ? 'token' : undefined,
    auth.nkeySeed !== undefined ? 'nkey seed' : undefined,
    auth.creds !== undefined ? 'creds' : undefined,
  ].filter((k) => k !== undefined);
  if (kinds.length > 1) throw ConfigError.invalid('auth', kinds.join(' + '), 'one kind of credentials');
  if ((auth.user === undefined) !== (auth.password === undefined))
    throw ConfigError.missing(auth.user === undefined ? 'user' : 'password', 'user and password together');
  if (auth.nkeySeed !== undefined && !/^SU[A-Z2-7]+$/.test(auth.nkeySeed.trim()))
    throw ConfigError.invalid('nkeySeed', '<redacted>', 'a user nkey seed starting with SU');
  // never in a log line, however the options were built
  for (const v of [auth.password, auth.token, auth.nkeySeed, auth.creds, ...servers]) registerSecret(v);
  const tls = options.tls;
  if (tls !== undefined && (tls.cert === undefined) !== (tls.key === undefined))
    throw ConfigError.missing(tls.cert === undefined ? 'cert' : 'key', 'cert and key together (mutual TLS)');
  const maxAckPending = options.maxAckPending ?? 64;
  const nakMin = options.nakDelay?.min ?? 1000;
  return {
    servers,
    mode,
    subjects: options.subjects === undefined ? undefined : [...new Set(options.subjects)],
    stream: options.stream,
    consumer,
    createStream: options.createStream ?? true,
    deliverPolicy,
    ackWait: options.ackWait ?? 30_000,
    maxAckPending,
    maxDeliver: options.maxDeliver ?? -1,
    batch: Math.min(options.batch ?? 10, maxAckPending),
    fetchExpires: options.fetchExpires ?? 5000,
    nakDelay: { min: nakMin, max: Math.max(nakMin, options.nakDelay?.max ?? 60_000) },
    queue: options.queue,
    reply,
    replySubjects,
    auth,
    tls,
    name: options.name ?? DEFAULT_CONSUMER,
    reconnectWait: options.reconnectWait ?? 2000,
  };
}

/**
 * Read the NATS connector's environment into `natsSource` options: the OpenFaaS `nats-connector` names
 * (`broker_host`, `topics`) plus `nats_url`, `mode`, `stream`, `consumer`, `ack_wait`, credentials and TLS
 * (see the README's table). `max_ack_pending` defaults to core's `max_inflight`. Throws a one-line ConfigError.
 */
export function natsOptionsFromEnv(env: Env = process.env): NatsSourceOptions {
  const r = new EnvReader(env);
  const urls = r
    .secret('nats_url') // may carry user:password, so nats_url_file too
    ?.split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  const host = r.string('broker_host');
  const servers =
    urls ?? (host === undefined ? ['nats://nats:4222'] : host.split(',').map((h) => hostToUrl(h)));
  for (const s of servers) parseServer(urls ? 'nats_url' : 'broker_host', s);
  const subjectsName = r.raw('subjects') !== undefined ? 'subjects' : 'topics';
  const subjects = r.list(subjectsName);
  if (subjects) checkSubjects(subjectsName, subjects);
  const mode = r.oneOf('mode', ['jetstream', 'core'] as const) ?? 'jetstream';
  const opts: NatsSourceOptions = { servers, mode };
  const set = <K extends keyof NatsSourceOptions>(k: K, v: NatsSourceOptions[K] | undefined) => {
    if (v !== undefined) opts[k] = v;
  };
  set('subjects', subjects);
  set('stream', r.string('stream'));
  set('consumer', r.string('consumer') ?? r.string('durable'));
  set('createStream', r.bool('create_stream'));
  set('deliverPolicy', r.oneOf('deliver_policy', DELIVER_POLICIES));
  set('ackWait', r.duration('ack_wait', { min: 100 }));
  set(
    'maxAckPending',
    r.int('max_ack_pending', { min: 1, max: 1_000_000 }) ?? r.int('max_inflight', { min: 1 }),
  );
  set('maxDeliver', r.int('max_deliver', { min: -1 }));
  set('batch', r.int('batch', { min: 1, max: 10_000 }));
  set('fetchExpires', r.duration('fetch_expires', { min: 1000 }));
  const nakMin = r.duration('nak_delay');
  const nakMax = r.duration('nak_delay_max');
  if (nakMin !== undefined || nakMax !== undefined)
    opts.nakDelay = {
      ...(nakMin === undefined ? {} : { min: nakMin }),
      ...(nakMax === undefined ? {} : { max: nakMax }),
    };
  set('queue', r.string('queue') ?? r.string('queue_group'));
  set('reply', r.bool('reply'));
  set('replySubjects', r.list('reply_subjects'));
  set('name', r.string('connection_name'));
  set('reconnectWait', r.duration('reconnect_wait', { min: 10 }));
  const auth: NatsAuthOptions = {};
  const user = r.string('user') ?? r.string('username');
  const password = r.secret('password');
  const token = r.secret('token');
  const nkeySeed = r.secret('nkey_seed');
  const creds = r.secret('creds');
  if (user !== undefined) auth.user = user;
  if (password !== undefined) auth.password = password;
  if (token !== undefined) auth.token = token;
  if (nkeySeed !== undefined && !/^SU[A-Z2-7]+$/.test(nkeySeed))
    throw ConfigError.invalid('nkey_seed', '<redacted>', 'a user nkey seed starting with SU');
  if (nkeySeed !== undefined) auth.nkeySeed = nkeySeed;
  if (creds !== undefined) auth.creds = creds;
  if (Object.keys(auth).length > 0) opts.auth = auth;
  const tls: NatsTlsOptions = readTlsFiles({
    ca: r.string('ca_file') ?? r.string('tls_ca_file'),
    cert: r.string('cert_file') ?? r.string('tls_cert_file'),
    key: r.string('key_file') ?? r.string('tls_key_file'),
  });
  if (Object.keys(tls).length > 0) opts.tls = tls;
  if (opts.reply === true && mode === 'jetstream')
    throw ConfigError.invalid(
      'reply',
      'true',
      'reply only with mode=core (JetStream does not keep reply subjects)',
    );
  if (opts.reply === true && opts.replySubjects === undefined)
    throw ConfigError.missing(
      'reply_subjects',
      'the reply subjects the connector may publish to (e.g. _INBOX.>)',
    );
  if (user !== undefined && password === undefined)
    throw ConfigError.missing('password', 'user and password together');
  if (password !== undefined && user === undefined)
    throw ConfigError.missing('user', 'user and password together');
  resolveNatsOptions(opts);
  return opts;
}

/** OpenFaaS `broker_host` is a host name (port 4222); a `host:port` or a URL is taken as it is. */
function hostToUrl(host: string): string {
  const h = host.trim();
  if (/^[a-z]+:\/\//i.test(h)) return h;
  return /:\d+$/.test(h) ? `nats://${h}` : `nats://${h}:4222`;
}
