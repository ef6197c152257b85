import { ConfigError } from '@connector/core';
import { describe, expect, it } from 'vitest';
import { checkSqsOptions, sqsOptionsFromEnv } from './options.js';
import { sqsSource } from './source.js';

describe('sqsOptionsFromEnv', () => {
  it('reads queues, region, endpoint and polling settings', () => {
    expect(
      sqsOptionsFromEnv({
        queue_url: 'https://sqs.eu-west-1.amazonaws.com/1/a',
        queue_name: 'b, c',
        region: 'eu-west-1',
        endpoint: 'http://127.0.0.1:4566',
        wait_time: '10s',
        max_messages: '5',
        visibility_timeout: '1m',
        pollers: '3',
        ordering: 'none',
        topic_attribute: 'topic',
        visibility_heartbeat: 'false',
        release_on_stop: 'false',
        abort_poll_on_stop: 'true',
        fast_path: 'false',
      }),
    ).toEqual({
      queues: ['https://sqs.eu-west-1.amazonaws.com/1/a', 'b', 'c'],
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:4566',
      waitTime: 10,
      maxMessages: 5,
      visibilityTimeout: 60,
      pollers: 3,
      ordering: 'none',
      topicAttribute: 'topic',
      heartbeat: false,
      releaseOnStop: false,
      abortPollOnStop: true,
      fastPath: false,
    });
  });

  it.each([
    [{}, 'queue_name'],
    [{ queue_name: 'q', wait_time: '21s' }, 'wait_time'],
    [{ queue_name: 'q', wait_time: '1500ms' }, 'wait_time'],
    [{ queue_name: 'q', max_messages: '11' }, 'max_messages'],
    [{ queue_name: 'q', pollers: '0' }, 'pollers'],
    [{ queue_name: 'q', ordering: 'fifo' }, 'ordering'],
    [{ queue_name: 'q', endpoint: 'nope' }, 'endpoint'],
    [{ queue_name: 'q', visibility_timeout: 'x' }, 'visibility_timeout'],
    [{ queue_name: 'q', abort_poll_on_stop: 'maybe' }, 'abort_poll_on_stop'],
    [{ queue_name: 'q', fast_path: 'fast' }, 'fast_path'],
    [{ queue_name: 'q', access_key_id: 'AKID' }, 'secret_access_key'],
    [{ queue_name: 'q', secret_access_key: 'k3y-secret' }, 'access_key_id'],
    [{ queue_name: 'q', session_token: 't0ken-secret' }, 'access_key_id'],
    [{ queue_name: 'q', secret_access_key: 'a', secret_access_key_file: '/x' }, 'secret_access_key_file'],
    [
      { queue_name: 'q', access_key_id: 'AKID', secret_access_key_file: '/nonexistent' },
      'secret_access_key_file',
    ],
  ])('%j fails with one line naming %s', (env, setting) => {
    expect(() => sqsOptionsFromEnv(env)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', setting }));
  });

  it('checks programmatic options too', () => {
    expect(() => checkSqsOptions({ queues: [] })).toThrow('missing queues: expected at least one queue name');
    expect(() => checkSqsOptions({ queues: ['a', ' '] })).toThrow(
      'invalid queues=" ": expected a queue name',
    );
    expect(() => checkSqsOptions({ queues: ['q'], receiveRetryDelay: { min: 10, max: 5 } })).toThrow(
      'invalid receiveRetryDelay.max=5: expected milliseconds, at least receiveRetryDelay.min (10)',
    );
    expect(() => checkSqsOptions({ queues: ['q'], receiveRetryDelay: { min: -1, max: 5 } })).toThrow(
      'invalid receiveRetryDelay.min=-1',
    );
    expect(() => checkSqsOptions({ queues: ['q'], maxMessages: 0 })).toThrow(
      'invalid maxMessages=0: expected an integer from 1 to 10',
    );
    expect(() => checkSqsOptions({ queues: ['q'], fastPath: 'no' as unknown as boolean })).toThrow(
      'invalid fastPath="no": expected true or false',
    );
  });

  it('ordering: key or none, anything else a ConfigError naming ordering', () => {
    for (const ordering of ['key', 'none'] as const)
      expect(() => checkSqsOptions({ queues: ['q.fifo'], ordering })).not.toThrow();
    const sideways = { queues: ['q.fifo'], ordering: 'sideways' as 'none' };
    expect(() => checkSqsOptions(sideways)).toThrow(ConfigError);
    expect(() => sqsSource(sideways)).toThrow('invalid ordering="sideways"');
    expect(() => checkSqsOptions(sideways)).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG',
        setting: 'ordering',
        message: 'invalid ordering="sideways": expected key or none',
      }),
    );
    expect(sqsOptionsFromEnv({ queue_name: 'q.fifo' }).ordering).toBeUndefined(); // the default: key
    expect(sqsOptionsFromEnv({ queue_name: 'q.fifo', ordering: 'key' }).ordering).toBe('key');
  });
});
