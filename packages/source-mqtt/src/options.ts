import {
  ConfigError,
  type Env,
  EnvReader,
  parseDuration,
  readTlsFiles,
  redactUrl,
  registerSecret,
} from '@connector/core';

/** MQTT protocol level: 3 = MQTT 3.1, 4 = MQTT 3.1.1, 5 = MQTT 5. */
export type MqttProtocolVersion = 3 | 4 | 5;

/** MQTT quality of service of the subscriptions. */
export type MqttQos = 0 | 1 | 2;

/** TLS settings (PEM contents, not paths; `mqttOptionsFromEnv` reads the files). */
export interface MqttTlsOptions {
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

/** Options of `mqttSource`. Durations are milliseconds. */
export interface MqttSourceOptions {
  /** Broker URL(s): `mqtt://`, `mqtts://`, `ws://`, `wss://` (Go-style `tcp://`, `ssl://`, `tls://` too).
   * Several URLs are tried in turn on reconnect. */
  broker: string | readonly string[];
  /** Topic filters to subscribe to (wildcards allowed). Default: exactly the topics the functions' `topic`
   * annotations name, following the topic map as it changes. */
  topics?: readonly string[];
  /** Client id; keep it stable so the broker keeps the session (default `openfaas-mqtt-connector`). */
  clientId?: string;
  /** Subscription QoS (default 1). QoS 1 and 2 are acknowledged only after delivery. */
  qos?: MqttQos;
  /** Start with a clean session (default false: the broker keeps the session and queues for us). */
  clean?: boolean;
  /** Broker user name. */
  username?: string;
  /** Broker password (never logged). */
  password?: string;
  /** 4 = MQTT 3.1.1, 5 = MQTT 5, 3 = MQTT 3.1. Not set: MQTT 5, and 3.1.1 once a broker refuses MQTT 5. */
  protocolVersion?: MqttProtocolVersion;
  /** TLS settings for `mqtts://` / `wss://`. */
  tls?: MqttTlsOptions;
  /** MQTT 5 session expiry after a disconnect, ms (default Infinity = never; 0 = session ends on disconnect). */
  sessionExpiry?: number;
  /** Subscribe as `$share/<group>/<filter>` so replicas with the same group split the messages. */
  sharedGroup?: string;
  /** Route on the topic without its first level (emitter.io channel keys), like the Go connector's flag. */
  trimChannelKey?: boolean;
  /** MQTT keepalive, ms (default 60 s; rounded to seconds). */
  keepalive?: number;
  /** How long to wait for CONNACK, ms (default 30 s). */
  connectTimeout?: number;
  /** Reconnect back-off: first delay `min` (default 1 s), doubling up to `max` (default 30 s). */
  reconnectDelay?: { min?: number; max?: number };
  /** After a delivery failed (outcome `ack: false`), reconnect after this delay so the broker redelivers the
   * unacknowledged messages of the session (default 5 s). */
  redeliveryDelay?: number;
  /** QoS 1 messages received and not yet PUBACKed before the source stops reading (default 64); MQTT 5: also the receive maximum. */
  receiveMaximum?: number;
  /** `key` (default): messages of one topic are delivered one after another, in order. `none`: concurrently, up to
   * the in-flight limit (PUBACKs still go out in receive order). */
  ordering?: MqttOrdering;
  /** Deliveries open at once before the source stops reading from the socket (default 1000). */
  maxPending?: number;
  /** MQTT 5 request/response: topic filters a message's `responseTopic` must match for the first function's
   * response to be published there (e.g. `['replies/#']`). Default none: replies are off, since any publisher
   * could otherwise make the connector publish to any topic it may write to. */
  responseTopics?: readonly string[];
}

/** Options with every default applied, as the source uses them. */
export interface ResolvedMqttOptions {
  brokers: readonly URL[];
  topics: readonly string[] | undefined;
  clientId: string;
  qos: MqttQos;
  clean: boolean;
  username: string | undefined;
  password: string | undefined;
  protocolVersion: MqttProtocolVersion;
  tls: MqttTlsOptions | undefined;
  sessionExpiry: number;
  sharedGroup: string | undefined;
  trimChannelKey: boolean;
  keepalive: number;
  connectTimeout: number;
  reconnectDelay: { min: number; max: number };
  redeliveryDelay: number;
  receiveMaximum: number;
  ordering: MqttOrdering;
  maxPending: number;
  /** Filters a response topic must match (empty: replies off). */
  responseTopics: readonly string[];
}

/** Delivery order of the messages of one topic: one after another (`key`), or concurrently (`none`). */
export type MqttOrdering = 'key' | 'none';

/** Default client id (stable, so a restarted connector resumes its session). */
export const DEFAULT_CLIENT_ID = 'openfaas-mqtt-connector';

const BROKER_PROTOCOLS = ['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'tls:', 'ws:', 'wss:'];
const SECURE_PROTOCOLS = ['mqtts:', 'ssl:', 'tls:', 'wss:'];

function fail(setting: string, value: unknown, expected: string): never {
  throw ConfigError.invalid(setting, value, expected);
}

/** A broker URL for logs and errors: core's `redactUrl` (the password hidden, the user name kept). */
export { redactUrl };

/** Parse one broker URL, or throw a ConfigError naming `setting`. */
export function parseBroker(setting: string, value: string): URL {
  let u: URL;
  try {
    u = new URL(value.trim());
  } catch {
    return fail(setting, value, 'a URL like mqtt://host:1883, mqtts://host:8883 or ws://host:8080/mqtt');
  }
  if (!BROKER_PROTOCOLS.includes(u.protocol))
    return fail(setting, redactUrl(u), 'an mqtt://, mqtts://, ws:// or wss:// URL (or tcp://, ssl://)');
  if (u.hostname === '') return fail(setting, redactUrl(u), 'a URL with a host, like mqtt://host:1883');
  return u;
}

/** Why `filter` is not a valid MQTT topic filter, or undefined when it is. */
export function topicFilterProblem(filter: string): string | undefined {
  if (filter === '') return 'a non-empty topic filter';
  if (filter.includes('\u0000')) return 'a topic filter without NUL characters';
  if (Buffer.byteLength(filter, 'utf8') > 65535) return 'a topic filter of at most 65535 bytes';
  let f = filter;
  if (f.startsWith('$share/')) {
    const rest = f.slice('$share/'.length);
    const slash = rest.indexOf('/');
    const group = slash < 0 ? rest : rest.slice(0, slash);
    if (slash <= 0 || group.includes('+') || group.includes('#'))
      return 'a shared subscription like $share/<group>/<filter>';
    f = rest.slice(slash + 1);
    if (f === '') return 'a shared subscription like $share/<group>/<filter>';
  }
  const levels = f.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as string;
    if (level === '#' && i !== levels.length - 1) return "'#' only as the last level of a topic filter";
    if (level !== '#' && level !== '+' && (level.includes('#') || level.includes('+')))
      return "wildcards '+' and '#' only as a whole level of a topic filter";
  }
  return undefined;
}

function checkFilters(setting: string, topics: readonly string[]): void {
  if (!Array.isArray(topics)) fail(setting, topics, 'a list of topic filters');
  for (const t of topics) {
    if (typeof t !== 'string') fail(setting, t, 'topic filters as strings');
    const problem = topicFilterProblem(t);
    if (problem) fail(setting, t, problem);
  }
}

function checkResponseTopics(setting: string, filters: readonly string[]): void {
  checkFilters(setting, filters);
  for (const f of filters)
    if (f.startsWith('$share/')) fail(setting, f, 'topic filters a response topic must match (no $share/)');
}

function checkMs(setting: string, v: number | undefined, min = 0, allowInfinity = false): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || Number.isNaN(v) || v < min || (!allowInfinity && !Number.isFinite(v)))
    fail(setting, v, `a number of milliseconds >= ${min}${allowInfinity ? ' (or Infinity)' : ''}`);
}

function checkInt(setting: string, v: number | undefined, min: number, max: number): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    fail(setting, v, `an integer from ${min} to ${max}`);
}

/** Validate options and fill in defaults; throws a one-line ConfigError naming the first invalid option. */
export function resolveMqttOptions(options: MqttSourceOptions): ResolvedMqttOptions {
  if (typeof options !== 'object' || options === null) fail('options', options, 'an options object');
  const list = typeof options.broker === 'string' ? options.broker.split(',') : options.broker;
  if (!Array.isArray(list) || list.every((b) => typeof b !== 'string' || b.trim() === ''))
    fail('broker', options.broker, 'a broker URL like mqtt://host:1883');
  const brokers = list.filter((b) => b.trim() !== '').map((b) => parseBroker('broker', b));
  if (options.topics !== undefined) {
    checkFilters('topics', options.topics);
    if (options.topics.length === 0)
      fail('topics', '', 'at least one topic filter (or leave it unset to follow the functions)');
  }
  const clientId = options.clientId ?? DEFAULT_CLIENT_ID;
  if (typeof clientId !== 'string' || clientId === '' || Buffer.byteLength(clientId) > 65535)
    fail('clientId', clientId, 'a non-empty client id');
  const qos = options.qos ?? 1;
  if (qos !== 0 && qos !== 1 && qos !== 2) fail('qos', qos, '0, 1 or 2');
  const protocolVersion = options.protocolVersion ?? 5;
  if (protocolVersion !== 3 && protocolVersion !== 4 && protocolVersion !== 5)
    fail('protocolVersion', protocolVersion, '4 (MQTT 3.1.1), 5 (MQTT 5) or 3 (MQTT 3.1)');
  if (options.password !== undefined && options.username === undefined)
    throw new ConfigError('password', 'invalid password: a password needs a username (MQTT requires both)');
  registerSecret(options.password); // never in a log line, however the options were built
  for (const b of brokers) registerSecret(b.href);
  if (options.sharedGroup !== undefined) {
    const g = options.sharedGroup;
    if (typeof g !== 'string' || g === '' || /[/+#]/.test(g))
      fail('sharedGroup', g, "a group name without '/', '+' or '#'");
    for (const t of options.topics ?? [])
      if (t.startsWith('$share/')) fail('topics', t, 'plain filters when sharedGroup is set');
  }
  const tls = options.tls;
  if (tls !== undefined) {
    if ((tls.cert === undefined) !== (tls.key === undefined))
      throw new ConfigError('tls', 'invalid tls: a client certificate needs both cert and key');
    if (
      (tls.ca !== undefined || tls.cert !== undefined) &&
      !brokers.some((b) => SECURE_PROTOCOLS.includes(b.protocol))
    ) {
      fail('broker', redactUrl(brokers[0] as URL), 'an mqtts:// or wss:// URL when TLS certificates are set');
    }
  }
  if (options.responseTopics !== undefined) checkResponseTopics('responseTopics', options.responseTopics);
  checkMs('sessionExpiry', options.sessionExpiry, 0, true);
  checkMs('keepalive', options.keepalive, 0);
  if ((options.keepalive ?? 0) > 65_535_000) fail('keepalive', options.keepalive, 'at most 65535 s');
  checkMs('connectTimeout', options.connectTimeout, 1);
  checkMs('reconnectDelay.min', options.reconnectDelay?.min, 1);
  checkMs('reconnectDelay.max', options.reconnectDelay?.max, 1);
  checkMs('redeliveryDelay', options.redeliveryDelay, 0);
  checkInt('receiveMaximum', options.receiveMaximum, 1, 65535);
  checkInt('maxPending', options.maxPending, 1, 1_000_000);
  if (options.ordering !== undefined && options.ordering !== 'key' && options.ordering !== 'none')
    fail('ordering', options.ordering, 'key or none');
  const rMin = options.reconnectDelay?.min ?? 1000;
  const rMax = Math.max(options.reconnectDelay?.max ?? 30_000, rMin);
  return {
    brokers,
    topics: options.topics === undefined ? undefined : [...new Set(options.topics)],
    clientId,
    qos,
    clean: options.clean ?? false,
    username: options.username,
    password: options.password,
    protocolVersion,
    tls,
    sessionExpiry: options.sessionExpiry ?? Number.POSITIVE_INFINITY,
    sharedGroup: options.sharedGroup,
    trimChannelKey: options.trimChannelKey ?? false,
    keepalive: options.keepalive ?? 60_000,
    connectTimeout: options.connectTimeout ?? 30_000,
    reconnectDelay: { min: rMin, max: rMax },
    redeliveryDelay: options.redeliveryDelay ?? 5000,
    receiveMaximum: options.receiveMaximum ?? 64,
    ordering: options.ordering ?? 'key',
    maxPending: options.maxPending ?? 1000,
    responseTopics: [...new Set(options.responseTopics ?? [])],
  };
}

function durationOrSeconds(r: EnvReader, name: string, allowNever: boolean): number | undefined {
  const v = r.raw(name);
  if (v === undefined) return undefined;
  if (allowNever && /^(never|inf|infinity)$/i.test(v)) return Number.POSITIVE_INFINITY;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const ms = parseDuration(v);
  if (ms === undefined)
    return r.fail(name, v, `a duration like 30s or 1h, a number of seconds${allowNever ? ', or never' : ''}`);
  return ms;
}

/**
 * Read the MQTT connector's environment (`broker`, `topic`/`topics`, `id`, `qos`, `clean`, `username`,
 * `password`, `protocol_version`, `ca_file`, `cert_file`, `key_file`, `reject_unauthorized`, `session_expiry`,
 * `shared_group`, `trim_channel_key`, `response_topics`, ...) into `mqttSource` options. Throws a one-line ConfigError.
 */
export function mqttOptionsFromEnv(env: Env = process.env): MqttSourceOptions {
  const r = new EnvReader(env);
  const broker = r.list('broker');
  if (broker === undefined || broker.length === 0)
    throw ConfigError.missing('broker', 'a URL like mqtt://host:1883 (set env broker)');
  for (const b of broker) parseBroker('broker', b);
  const topicName = r.raw('topics') !== undefined ? 'topics' : 'topic';
  const topics = r.list(topicName);
  if (topics) checkFilters(topicName, topics);
  const qos = r.int('qos', { min: 0, max: 2 }) as MqttQos | undefined;
  const pv = r.raw('protocol_version');
  let protocolVersion: MqttProtocolVersion | undefined;
  if (pv !== undefined) {
    const map: Record<string, MqttProtocolVersion> = {
      '3': 3,
      '3.1': 3,
      '4': 4,
      '3.1.1': 4,
      '5': 5,
      '5.0': 5,
    };
    protocolVersion = map[pv] ?? r.fail('protocol_version', pv, '3.1.1 (or 4), 5, or 3.1');
  }
  const password = r.secret('password');
  const username = r.string('username');
  if (password !== undefined && username === undefined)
    throw new ConfigError('password', 'invalid password: a password needs a username (set env username)');
  const tls: MqttTlsOptions = readTlsFiles({
    ca: r.string('ca_file'),
    cert: r.string('cert_file'),
    key: r.string('key_file'),
  });
  const rejectUnauthorized = r.bool('reject_unauthorized');
  if (rejectUnauthorized !== undefined) tls.rejectUnauthorized = rejectUnauthorized;
  const sharedGroup = r.string('shared_group');
  if (sharedGroup !== undefined && /[/+#]/.test(sharedGroup))
    r.fail('shared_group', sharedGroup, "a group name without '/', '+' or '#'");
  const responseTopics = r.list('response_topics');
  if (responseTopics) checkResponseTopics('response_topics', responseTopics);
  const keepalive = durationOrSeconds(r, 'keepalive', false);
  const reconnectMin = r.duration('reconnect_delay', { min: 1 });
  const reconnectMax = r.duration('reconnect_delay_max', { min: 1 });
  const reconnectDelay: { min?: number; max?: number } = {};
  if (reconnectMin !== undefined) reconnectDelay.min = reconnectMin;
  if (reconnectMax !== undefined) reconnectDelay.max = reconnectMax;
  const opts: MqttSourceOptions = { broker };
  const set = <K extends keyof MqttSourceOptions>(k: K, v: MqttSourceOptions[K] | undefined) => {
    if (v !== undefined) opts[k] = v;
  };
  set('topics', topics);
  set('clientId', r.string('id') ?? r.string('client_id'));
  set('qos', qos);
  set('clean', r.bool('clean'));
  set('username', username);
  set('password', password);
  set('protocolVersion', protocolVersion);
  set('tls', Object.keys(tls).length > 0 ? tls : undefined);
  set('sessionExpiry', durationOrSeconds(r, 'session_expiry', true));
  set('sharedGroup', sharedGroup);
  set('trimChannelKey', r.bool('trim_channel_key') ?? r.bool('trim-channel-key'));
  set('keepalive', keepalive);
  set('connectTimeout', r.duration('connect_timeout', { min: 1 }));
  set('reconnectDelay', Object.keys(reconnectDelay).length > 0 ? reconnectDelay : undefined);
  set('redeliveryDelay', r.duration('redelivery_delay'));
  set('receiveMaximum', r.int('receive_maximum', { min: 1, max: 65535 }));
  set('maxPending', r.int('max_pending', { min: 1, max: 1_000_000 }));
  set('ordering', r.string('ordering') as MqttOrdering | undefined);
  set('responseTopics', responseTopics);
  resolveMqttOptions(opts);
  return opts;
}

const FLAG_TO_ENV: Record<string, string> = {
  broker: 'broker',
  topic: 'topic',
  topics: 'topics',
  id: 'id',
  qos: 'qos',
  clean: 'clean',
  username: 'username',
  password: 'password',
  'trim-channel-key': 'trim_channel_key',
  gateway: 'gateway_url',
  'async-invoke': 'async_invocation',
  'gw-username': 'gw_username',
  'gw-password': 'gw_password',
};

/**
 * Translate the Go mqtt-connector's command-line flags (`-broker=tcp://...`, `-topic x`, `-qos 1`,
 * `-trim-channel-key`, `-gateway=...`, `-async-invoke`, `-gw-username`, `-gw-password`) into env names, so an
 * existing deployment's args keep working. Unknown flags throw a ConfigError.
 */
export function envFromGoFlags(argv: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const m = /^--?([a-z][a-z0-9-]*)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new ConfigError('args', `invalid argument ${JSON.stringify(arg)}: expected -flag=value`);
    const flag = m[1] as string;
    const env = FLAG_TO_ENV[flag];
    if (env === undefined)
      throw new ConfigError(
        'args',
        `unknown flag -${flag}: expected one of ${Object.keys(FLAG_TO_ENV)
          .map((f) => `-${f}`)
          .join(', ')}`,
      );
    let value = m[2];
    const booleanFlag = flag === 'clean' || flag === 'trim-channel-key' || flag === 'async-invoke';
    if (value === undefined) {
      const next = argv[i + 1];
      if (booleanFlag) value = 'true';
      else if (next === undefined || next.startsWith('-'))
        throw new ConfigError('args', `flag -${flag} needs a value: expected -${flag}=value`);
      else {
        value = next;
        i++;
      }
    }
    out[env] = value;
  }
  return out;
}
