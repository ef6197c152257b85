import type { SQSClient, SQSClientConfig } from '@aws-sdk/client-sqs';
import { ConfigError, type Env, EnvReader, registerSecret } from '@connector/core';

/** Options of `sqsSource`. */
export interface SqsSourceOptions {
  /** Queue names or queue URLs (one or several). */
  queues: readonly string[];
  /** AWS region (default: the SDK's chain, e.g. AWS_REGION). */
  region?: string;
  /** Endpoint override (emulators, VPC endpoints). */
  endpoint?: string;
  /** Long-poll wait in seconds, 0-20 (default 20). */
  waitTime?: number;
  /** Messages per ReceiveMessage, 1-10 (default 10). */
  maxMessages?: number;
  /** Visibility timeout in seconds for received messages (default: the queue's own). */
  visibilityTimeout?: number;
  /** Concurrent long polls per queue (default 1). */
  pollers?: number;
  /**
   * FIFO queues: `key` (default) delivers the messages of one group one after another, in order; `none`
   * concurrently, each settled on its own. Trade-off of `none`: a group's messages may run concurrently and
   * out of order, and a failed one comes back after its visibility timeout, behind later ones already
   * delivered and deleted. Standard queues: no effect.
   */
  ordering?: 'key' | 'none';
  /** Route on this message attribute's value instead of the queue name (falls back to the queue name). */
  topicAttribute?: string;
  /** Extend the visibility of messages whose invocation runs long (default true). */
  heartbeat?: boolean;
  /** On stop, make received-but-unsettled messages visible again at once (default true). */
  releaseOnStop?: boolean;
  /**
   * On stop, abort a long poll in progress instead of waiting for it (at most `waitTime`). Faster stop, but SQS may
   * still hand messages to the abandoned poll; those then reappear only after their visibility timeout (default false).
   */
  abortPollOnStop?: boolean;
  /**
   * Back-off between failed ReceiveMessage calls, in ms: full jitter, growing from `min` to `max` while the errors
   * are retryable (network, throttling); `max` right away after one that is not (denied credentials, deleted
   * queue). Default `{ min: 100, max: 30_000 }`.
   */
  receiveRetryDelay?: { readonly min: number; readonly max: number };
  /** Extra SDK client settings (credentials come from the SDK's default provider chain otherwise). Without a
   * `requestHandler` of its own the source's client sends over core's HTTP client, not node:http (less CPU per call). */
  clientConfig?: SQSClientConfig;
  /** A ready SDK client (tests, custom middleware); region/endpoint/clientConfig are then ignored, and every call
   * goes through it (no fast path). */
  client?: SQSClient;
  /**
   * Send ReceiveMessage, DeleteMessageBatch and ChangeMessageVisibility(Batch) in SQS's JSON protocol from the source
   * itself, signed (SigV4) with the SDK client's credentials, region, endpoint and clock offset, instead of through
   * the SDK's middleware stack: a fraction of the CPU a message (see the README). Default true; it applies only to
   * the source's own client without a `requestHandler` or `logger` in `clientConfig` (those see every call). The SDK's
   * own retries (`maxAttempts`, `retryStrategy`) do not apply to these calls: the source retries them itself.
   */
  fastPath?: boolean;
}

/** Validate options; throws a one-line ConfigError naming the option. */
export function checkSqsOptions(o: SqsSourceOptions): void {
  const bad = (name: string, value: unknown, expected: string): never => {
    throw ConfigError.invalid(name, value, expected);
  };
  if (!Array.isArray(o.queues) || o.queues.length === 0)
    throw ConfigError.missing('queues', 'at least one queue name or URL');
  for (const q of o.queues)
    if (typeof q !== 'string' || q.trim() === '') bad('queues', q, 'a queue name or URL');
  const int = (name: string, v: number | undefined, min: number, max: number) => {
    if (v !== undefined && !(Number.isInteger(v) && v >= min && v <= max))
      bad(name, v, `an integer from ${min} to ${max}`);
  };
  int('waitTime', o.waitTime, 0, 20);
  int('maxMessages', o.maxMessages, 1, 10);
  int('visibilityTimeout', o.visibilityTimeout, 0, 43_200);
  int('pollers', o.pollers, 1, 100);
  if (o.fastPath !== undefined && typeof o.fastPath !== 'boolean')
    bad('fastPath', o.fastPath, 'true or false');
  if (o.ordering !== undefined && o.ordering !== 'key' && o.ordering !== 'none')
    bad('ordering', o.ordering, 'key or none');
  const delay = o.receiveRetryDelay;
  if (delay !== undefined) {
    const ms = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
    if (!ms(delay.min)) bad('receiveRetryDelay.min', delay.min, 'milliseconds, 0 or more');
    if (!ms(delay.max) || delay.max < delay.min)
      bad('receiveRetryDelay.max', delay.max, `milliseconds, at least receiveRetryDelay.min (${delay.min})`);
  }
  const creds = o.clientConfig?.credentials;
  if (typeof creds === 'object' && creds !== null) {
    registerSecret(creds.secretAccessKey); // never in a log line, however the options were built
    registerSecret(creds.sessionToken);
  }
  if (o.endpoint !== undefined) {
    try {
      new URL(o.endpoint);
    } catch {
      bad('endpoint', o.endpoint, 'a URL like http://127.0.0.1:4566');
    }
  }
}

/**
 * Read the SQS connector's env: `queue_url` and/or `queue_name` (comma lists), `region`, `endpoint`,
 * `wait_time`, `max_messages`, `visibility_timeout`, `pollers`, `ordering`, `topic_attribute`,
 * `visibility_heartbeat`, `release_on_stop`, `abort_poll_on_stop`, `fast_path`. Durations take Go syntax (`20s`) and are
 * whole seconds. Credentials: `access_key_id` + `secret_access_key` (+ `session_token`), each also from a
 * file (`*_file`); unset, the AWS SDK's default provider chain finds them (AWS_ACCESS_KEY_ID, web identity,
 * instance roles).
 */
export function sqsOptionsFromEnv(env: Env = process.env): SqsSourceOptions {
  const r = new EnvReader(env);
  const queues = [...(r.list('queue_url') ?? []), ...(r.list('queue_name') ?? [])];
  if (queues.length === 0) r.fail('queue_name', '', 'a queue name or URL (set queue_url or queue_name)');
  const seconds = (name: string, max: number) => {
    const ms = r.duration(name);
    if (ms === undefined) return undefined;
    if (ms % 1000 !== 0 || ms / 1000 > max) r.fail(name, env[name] ?? '', `whole seconds from 0s to ${max}s`);
    return ms / 1000;
  };
  const options: SqsSourceOptions = { queues };
  const set = <K extends keyof SqsSourceOptions>(k: K, v: SqsSourceOptions[K] | undefined) => {
    if (v !== undefined) options[k] = v;
  };
  set('region', r.string('region'));
  set('endpoint', r.url('endpoint'));
  set('waitTime', seconds('wait_time', 20));
  set('maxMessages', r.int('max_messages', { min: 1, max: 10 }));
  set('visibilityTimeout', seconds('visibility_timeout', 43_200));
  set('pollers', r.int('pollers', { min: 1, max: 100 }));
  set('ordering', r.string('ordering') as SqsSourceOptions['ordering']);
  set('topicAttribute', r.string('topic_attribute'));
  set('heartbeat', r.bool('visibility_heartbeat'));
  set('releaseOnStop', r.bool('release_on_stop'));
  set('abortPollOnStop', r.bool('abort_poll_on_stop'));
  set('fastPath', r.bool('fast_path'));
  const accessKeyId = r.secret('access_key_id', { redact: false });
  const secretAccessKey = r.secret('secret_access_key');
  const sessionToken = r.secret('session_token');
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined))
    throw ConfigError.missing(
      accessKeyId === undefined ? 'access_key_id' : 'secret_access_key',
      'access_key_id and secret_access_key together (or neither: the SDK chain finds credentials)',
    );
  if (accessKeyId !== undefined && secretAccessKey !== undefined)
    options.clientConfig = {
      credentials: { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }) },
    };
  else if (sessionToken !== undefined)
    throw ConfigError.missing('access_key_id', 'access_key_id and secret_access_key with session_token');
  checkSqsOptions(options);
  return options;
}
