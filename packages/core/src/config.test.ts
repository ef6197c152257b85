import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFromEnv, DEFAULT_GATEWAY_URL, parseBool, parseDuration } from './config.js';
import { ConfigError } from './errors.js';

function configError(env: Record<string, string>): ConfigError {
  try {
    configFromEnv(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('parseDuration (Go syntax)', () => {
  it.each([
    ['30s', 30_000],
    ['1m30s', 90_000],
    ['500ms', 500],
    ['1h', 3_600_000],
    ['1.5s', 1500],
    ['2h45m', 9_900_000],
    ['0', 0],
    ['100us', 0.1],
  ])('%s = %d ms', (v, ms) => expect(parseDuration(v)).toBe(ms));

  it.each(['30', '', 's', '1x', '-1s', '1 s', 'abc'])('rejects %j', (v) =>
    expect(parseDuration(v)).toBeUndefined(),
  );
});

describe('parseBool', () => {
  it.each(['true', 'TRUE', '1', 'yes', 'on', 't'])('%s is true', (v) => expect(parseBool(v)).toBe(true));
  it.each(['false', '0', 'no', 'off', 'F'])('%s is false', (v) => expect(parseBool(v)).toBe(false));
  it('rejects others', () => expect(parseBool('maybe')).toBeUndefined());
});

describe('configFromEnv', () => {
  it('has OpenFaaS defaults for an empty environment', () => {
    const c = configFromEnv({});
    expect(c.gatewayUrl).toBe(DEFAULT_GATEWAY_URL);
    expect(c.topicDelimiter).toBe(',');
    expect(c.http).toEqual({ port: 8081 });
    expect(c.logLevel).toBe('info');
    expect(c.credentials).toBeUndefined();
    expect(c.upstreamTimeout).toBeUndefined();
  });

  it('reads every variable', () => {
    const c = configFromEnv({
      gateway_url: 'http://127.0.0.1:8080',
      upstream_timeout: '1m30s',
      rebuild_interval: '500ms',
      topic_delimiter: ';',
      async_invocation: 'true',
      async_callback_url: 'http://cb.local:9000/done',
      content_type: 'application/json',
      namespace: 'staging-fn',
      print_response: 'true',
      print_response_body: '1',
      print_request_body: 'yes',
      print_sync: 'false',
      user_agent: 'acme/mqtt-connector',
      connector_name: 'mqtt-connector',
      send_topic: 'false',
      topic_matcher: 'mqtt',
      max_inflight: '8',
      max_inflight_per_function: '2',
      max_retries: '5',
      retry_min_delay: '50ms',
      retry_max_delay: '2s',
      retry_on_status: '429, 503',
      on_failure: 'dead-letter',
      dead_letter_file: '/tmp/dlq.jsonl',
      drain_timeout: '10s',
      http_port: '0',
      log_level: 'debug',
    });
    expect(c).toEqual({
      gatewayUrl: 'http://127.0.0.1:8080',
      upstreamTimeout: 90_000,
      rebuildInterval: 500,
      topicDelimiter: ';',
      asyncInvocation: true,
      asyncCallbackUrl: 'http://cb.local:9000/done',
      contentType: 'application/json',
      namespace: 'staging-fn',
      printResponse: true,
      printResponseBody: true,
      printRequestBody: true,
      printSync: false,
      userAgent: 'acme/mqtt-connector',
      connectorName: 'mqtt-connector',
      sendTopic: false,
      topicMatcher: 'mqtt',
      maxInFlight: 8,
      maxInFlightPerFunction: 2,
      retry: { maxRetries: 5, minDelay: 50, maxDelay: 2000, retryOnStatus: [429, 503] },
      onFailure: 'dead-letter',
      deadLetterFile: '/tmp/dlq.jsonl',
      drainTimeout: 10_000,
      http: false,
      logLevel: 'debug',
    });
  });

  it('reads basic-auth credentials from secret_mount_path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'secrets-'));
    writeFileSync(join(dir, 'basic-auth-user'), 'admin\n');
    writeFileSync(join(dir, 'basic-auth-password'), 's3cret\n');
    const c = configFromEnv({ basic_auth: 'true', secret_mount_path: dir });
    expect(c.credentials).toEqual({ username: 'admin', password: 's3cret' });
    expect(configFromEnv({ basic_auth: 'false', secret_mount_path: dir }).credentials).toBeUndefined();
    rmSync(dir, { recursive: true });
  });

  it('fails with one line naming secret_mount_path when the secret files are missing', () => {
    const err = configError({ basic_auth: 'true', secret_mount_path: '/nonexistent/secrets' });
    expect(err.setting).toBe('secret_mount_path');
    expect(err.message).toContain('/nonexistent/secrets/basic-auth-user');
    expect(err.message).not.toContain('\n');
  });

  it.each([
    ['gateway_url', 'not a url', 'a URL'],
    ['gateway_url', 'ftp://gw:21', 'http: or https: URL'],
    ['upstream_timeout', '30', 'a duration like 30s'],
    ['upstream_timeout', '0', 'at least 1ms'],
    ['rebuild_interval', 'soon', 'a duration'],
    ['rebuild_interval', '10ms', 'at least 100ms'],
    // fast-check counterexample: over 2^31-1 ms Node fires the timer after 1 ms (a rebuild loop)
    ['rebuild_interval', '2900000000ms', 'at most 596h'],
    ['upstream_timeout', '1000h', 'at most 596h'],
    ['async_invocation', 'maybe', 'true or false'],
    ['async_callback_url', 'nope', 'a URL'],
    ['basic_auth', 'si', 'true or false'],
    ['print_response', '2', 'true or false'],
    ['print_response_body', 'x', 'true or false'],
    ['print_request_body', 'x', 'true or false'],
    ['print_sync', 'x', 'true or false'],
    ['send_topic', 'x', 'true or false'],
    ['topic_matcher', 'regex', 'one of exact, mqtt'],
    ['max_inflight', '0', 'an integer from 1'],
    ['max_inflight', 'many', 'an integer from 1'],
    ['max_inflight_per_function', '-1', 'an integer from 1'],
    ['max_retries', '1.5', 'an integer from 0'],
    ['retry_min_delay', '1', 'a duration'],
    ['retry_on_status', '429,abc', 'HTTP status codes'],
    ['on_failure', 'drop', 'one of dead-letter, redeliver'],
    ['drain_timeout', 'x', 'a duration'],
    ['http_port', '70000', 'an integer from 0 to 65535'],
    ['log_level', 'verbose', 'one of trace'],
  ])('%s=%j fails with one line naming it', (name, value, expected) => {
    const err = configError({ [name]: value });
    expect(err.setting).toBe(name);
    expect(err.code).toBe('ERR_CONFIG');
    expect(err.message).toContain(name);
    expect(err.message).toContain(JSON.stringify(value));
    expect(err.message).toContain(expected);
    expect(err.message.split('\n')).toHaveLength(1);
  });

  it('rejects retry_max_delay below retry_min_delay', () => {
    const err = configError({ retry_min_delay: '2s', retry_max_delay: '1s' });
    expect(err.setting).toBe('retry_max_delay');
  });

  it('rejects an empty topic_delimiter', () => {
    expect(configError({ topic_delimiter: '' }).setting).toBe('topic_delimiter');
  });
});
