import { ConfigError, type Env, EnvReader, readTlsFiles, registerSecret } from '@connector/core';

/** SASL mechanisms supported. */
export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

const SASL_MECHANISMS: readonly SaslMechanism[] = ['plain', 'scram-sha-256', 'scram-sha-512'];

/** A PEM block's first line: what a certificate or key given as contents must hold. */
const PEM = /-----BEGIN [A-Z0-9 ]+-----/;
const isPem = (v: unknown): boolean =>
  (typeof v === 'string' || Buffer.isBuffer(v)) && PEM.test(v.toString());

/** Options of `kafkaSource`. */
export interface KafkaSourceOptions {
  /** Bootstrap brokers, `host:port`. */
  brokers: readonly string[];
  /** Topics to consume; absent = the topics the functions' annotations name (followed as they change). */
  topics?: readonly string[];
  /** Consumer group id (default `openfaas-kafka-connector`). */
  group?: string;
  /** Client id (default `openfaas-kafka-connector`). */
  clientId?: string;
  /** Start a new group at the earliest offset (default true: nothing produced before the first start is skipped). */
  fromBeginning?: boolean;
  /** Session timeout in ms (default 30 s). */
  sessionTimeout?: number;
  /** Partitions processed at the same time (default 16); order is kept within each partition. */
  partitionConcurrency?: number;
  /**
   * `key` (default): the records of a partition are delivered one after another, in order. `none`: concurrently, up
   * to the connector's capacity (within one fetched batch); commits still never pass an unsettled or failed record.
   */
  ordering?: 'key' | 'none';
  /** Commit each partition's settled watermark at least this often in ms while records flow (default 1000). */
  commitInterval?: number;
  /** On a rebalance, how long in ms an in-flight record may still settle (and be committed) before it is
   * abandoned uncommitted, so the group is not held up (default 5000). */
  revokeTimeout?: number;
  /** Longest time in ms the broker holds a fetch waiting for data (default 500, as the Java client). */
  fetchMaxWait?: number;
  /** How often in ms topics the broker does not have (and does not create) are looked for again while the others
   * are consumed (default 30 s). */
  topicCheckInterval?: number;
  /**
   * TLS: true (system CAs), or PEM contents: `ca` (a private CA), `cert` + `key` (a client certificate, for mutual
   * TLS). `rejectUnauthorized: false` turns certificate checks off (tests only).
   */
  tls?: boolean | { ca?: string; cert?: string; key?: string; rejectUnauthorized?: boolean };
  /** SASL authentication (mechanism in any case); use it with `tls`, PLAIN sends the password as it is. */
  sasl?: { mechanism: SaslMechanism; username: string; password: string };
  /** Produce the function's response to this topic, with the original key. */
  replyTopic?: string;
  /** Topic the `deadLetter` handler produces failed messages to. */
  deadLetterTopic?: string;
  /** kafkajs log level: 0 nothing (default), 1 error, 2 warn, 4 info, 5 debug. */
  logLevel?: number;
}

const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;
const TOPIC_RULE = '[A-Za-z0-9._-], at most 249';

/** Validate options; throws a one-line ConfigError naming the option. */
export function checkKafkaOptions(o: KafkaSourceOptions): void {
  const bad = (name: string, value: unknown, expected: string): never => {
    throw ConfigError.invalid(name, value, expected);
  };
  registerSecret(o.sasl?.password); // never in a log line, however the options were built
  if (!Array.isArray(o.brokers) || o.brokers.length === 0)
    bad('brokers', o.brokers, 'at least one host:port');
  for (const b of o.brokers)
    if (!/^[^\s:/]+:\d{1,5}$/.test(b)) bad('brokers', b, 'host:port, e.g. kafka:9092');
  const badTopic = o.topics?.find((t) => !TOPIC_NAME.test(t));
  if (badTopic !== undefined) bad('topics', badTopic, `Kafka topic names (${TOPIC_RULE})`);
  for (const name of ['replyTopic', 'deadLetterTopic'] as const) {
    const t = o[name];
    if (t !== undefined && !TOPIC_NAME.test(t)) bad(name, t, `a Kafka topic name (${TOPIC_RULE})`);
  }
  if (o.sessionTimeout !== undefined && !(o.sessionTimeout >= 1000))
    bad('sessionTimeout', o.sessionTimeout, 'at least 1000 ms');
  const pc = o.partitionConcurrency;
  if (pc !== undefined && !(Number.isInteger(pc) && pc >= 1 && pc <= 1000))
    bad('partitionConcurrency', pc, 'an integer from 1 to 1000');
  if (o.ordering !== undefined && o.ordering !== 'key' && o.ordering !== 'none')
    bad('ordering', o.ordering, 'key or none');
  for (const name of ['commitInterval', 'revokeTimeout', 'fetchMaxWait', 'topicCheckInterval'] as const) {
    const v = o[name];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0 && v <= 3_600_000))
      bad(name, v, 'a number of ms from 0 to 3600000');
  }
  checkTls(o.tls);
  checkSasl(o.sasl);
}

/** `tls`: a boolean or PEM contents, a client certificate with its key. Never echoes a value (it may be a key). */
function checkTls(tls: KafkaSourceOptions['tls']): void {
  if (tls === undefined || typeof tls === 'boolean') return;
  if (typeof tls !== 'object' || tls === null || Array.isArray(tls))
    throw new ConfigError(
      'tls',
      'invalid tls: expected true, false or { ca?, cert?, key?, rejectUnauthorized? }',
    );
  for (const name of ['ca', 'cert', 'key'] as const) {
    if (tls[name] !== undefined && !isPem(tls[name])) {
      throw new ConfigError(
        `tls.${name}`,
        `invalid tls.${name}: expected PEM contents (-----BEGIN ...), not a path: read the file, or set ${name}_file`,
      );
    }
  }
  if (tls.cert !== undefined && tls.key === undefined)
    throw ConfigError.missing('tls.key', 'the private key of tls.cert (mutual TLS needs both)');
  if (tls.key !== undefined && tls.cert === undefined)
    throw ConfigError.missing('tls.cert', 'the certificate of tls.key (mutual TLS needs both)');
  if (tls.rejectUnauthorized !== undefined && typeof tls.rejectUnauthorized !== 'boolean')
    throw ConfigError.invalid('tls.rejectUnauthorized', tls.rejectUnauthorized, 'true or false');
}

/** `sasl`: a known mechanism, a user name and a password (never echoed). */
function checkSasl(sasl: KafkaSourceOptions['sasl']): void {
  if (sasl === undefined) return;
  if (typeof sasl !== 'object' || sasl === null)
    throw new ConfigError('sasl', 'invalid sasl: expected { mechanism, username, password }');
  const mechanism = typeof sasl.mechanism === 'string' ? sasl.mechanism.toLowerCase() : sasl.mechanism;
  if (!(SASL_MECHANISMS as readonly unknown[]).includes(mechanism))
    throw ConfigError.invalid('sasl.mechanism', sasl.mechanism, `one of ${SASL_MECHANISMS.join(', ')}`);
  if (typeof sasl.username !== 'string' || sasl.username === '')
    throw ConfigError.invalid('sasl.username', sasl.username, 'a non-empty user name');
  if (typeof sasl.password !== 'string' || sasl.password === '')
    throw new ConfigError('sasl.password', 'invalid sasl.password: expected a non-empty string');
}

/**
 * Read the Kafka connector env, compatible with the OpenFaaS kafka-connector: `broker_host` or `brokers` (comma
 * list), `topics`, `group`, `client_id`, `from_beginning`, `session_timeout`, `partition_concurrency`,
 * `commit_interval`, `revoke_timeout`, `fetch_max_wait`, `topic_check_interval`, `tls`,
 * `ca_file`/`cert_file`/`key_file`, `sasl_mechanism` + `sasl_username` + `sasl_password` (or `sasl_password_file`),
 * `reply_topic`, `dead_letter_topic`. Throws a one-line ConfigError naming the variable.
 */
export function kafkaOptionsFromEnv(env: Env = process.env): KafkaSourceOptions {
  const r = new EnvReader(env);
  const brokers =
    r.list('brokers') ??
    r.list('broker_host') ??
    r.fail('brokers', '', 'host:port list (set brokers or broker_host)');
  const o: KafkaSourceOptions = { brokers };
  const set = <K extends keyof KafkaSourceOptions>(k: K, v: KafkaSourceOptions[K] | undefined) => {
    if (v !== undefined) o[k] = v;
  };
  set('topics', r.list('topics'));
  set('group', r.string('group'));
  set('clientId', r.string('client_id'));
  set('fromBeginning', r.bool('from_beginning'));
  set('sessionTimeout', r.duration('session_timeout', { min: 1000 }));
  set('partitionConcurrency', r.int('partition_concurrency', { min: 1, max: 1000 }));
  set('ordering', r.string('ordering') as KafkaSourceOptions['ordering']);
  set('commitInterval', r.duration('commit_interval'));
  set('revokeTimeout', r.duration('revoke_timeout'));
  set('fetchMaxWait', r.duration('fetch_max_wait'));
  set('topicCheckInterval', r.duration('topic_check_interval'));
  const files = readTlsFiles({
    ca: r.string('ca_file'),
    cert: r.string('cert_file'),
    key: r.string('key_file'),
  });
  const tls = r.bool('tls');
  if (Object.keys(files).length > 0) {
    if (tls === false) r.fail('tls', 'false', 'true or unset when ca_file, cert_file or key_file is set');
    o.tls = files;
  } else set('tls', tls);
  const mechanism = r.oneOf('sasl_mechanism', SASL_MECHANISMS);
  if (mechanism !== undefined) {
    const username =
      r.string('sasl_username') ??
      r.fail('sasl_username', '', `a user name (required with sasl_mechanism=${mechanism})`);
    const password =
      r.secret('sasl_password') ?? r.fail('sasl_password', '', 'a password or sasl_password_file');
    o.sasl = { mechanism, username, password };
  } else {
    const given = ['sasl_username', 'sasl_password', 'sasl_password_file'].find(
      (n) => r.string(n) !== undefined,
    );
    if (given !== undefined)
      throw ConfigError.missing('sasl_mechanism', `plain, scram-sha-256 or scram-sha-512 (${given} is set)`);
  }
  const topic = (name: string): string | undefined => {
    const t = r.string(name);
    return t === undefined || TOPIC_NAME.test(t) ? t : r.fail(name, t, `a Kafka topic name (${TOPIC_RULE})`);
  };
  set('replyTopic', topic('reply_topic'));
  set('deadLetterTopic', topic('dead_letter_topic'));
  checkKafkaOptions(o);
  return o;
}
