import type { Logger } from '@connector/core';
import * as kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { kafkaError, logBrokerError } from './errors.js';

// kafkajs's own error classes, built the way kafkajs builds them (its .d.ts declares fewer constructor arguments
// than its code takes, hence the casts); its protocol errors come from this shape.
type KafkaJSError = kafkajs.KafkaJSError;
type Make = new (e: unknown, options?: unknown) => KafkaJSError & { type?: string };
const KafkaJSConnectionError = kafkajs.KafkaJSConnectionError as unknown as Make;
const KafkaJSNonRetriableError = kafkajs.KafkaJSNonRetriableError as unknown as Make;
const KafkaJSNumberOfRetriesExceeded = kafkajs.KafkaJSNumberOfRetriesExceeded as unknown as Make;
const KafkaJSProtocolError = kafkajs.KafkaJSProtocolError as unknown as Make;
const KafkaJSSASLAuthenticationError = kafkajs.KafkaJSSASLAuthenticationError as unknown as Make;
const protocol = (type: string, code: number, retriable: boolean) =>
  new KafkaJSProtocolError({ type, code, retriable, message: `broker said ${type}` });
const exhausted = (e: Error) => new KafkaJSNumberOfRetriesExceeded(e, { retryCount: 8, retryTime: 5000 });

describe('kafkaError', () => {
  it.each([
    [
      'SASL refused',
      new KafkaJSSASLAuthenticationError('SASL Plain: Invalid username or password'),
      'ERR_BROKER_AUTH',
      false,
      'KafkaJSSASLAuthenticationError',
    ],
    [
      'SASL refused, as kafkajs bails with it',
      new KafkaJSNonRetriableError(new KafkaJSSASLAuthenticationError('bad password'), {
        cause: new KafkaJSSASLAuthenticationError('bad password'),
      }),
      'ERR_BROKER_AUTH',
      false,
      'KafkaJSSASLAuthenticationError',
    ],
    [
      'topic not authorised',
      protocol('TOPIC_AUTHORIZATION_FAILED', 29, false),
      'ERR_BROKER_AUTH',
      false,
      'TOPIC_AUTHORIZATION_FAILED',
    ],
    [
      'connection refused',
      new KafkaJSConnectionError('Connection error: connect ECONNREFUSED', { code: 'ECONNREFUSED' }),
      'ERR_BROKER',
      true,
      'ECONNREFUSED',
    ],
    [
      'retries exhausted on a connection error',
      exhausted(new KafkaJSConnectionError('Connection timeout')),
      'ERR_BROKER',
      true,
      'KafkaJSConnectionError',
    ],
    [
      'a retriable protocol error',
      protocol('NOT_LEADER_FOR_PARTITION', 6, true),
      'ERR_BROKER',
      true,
      'NOT_LEADER_FOR_PARTITION',
    ],
    [
      'a final protocol error',
      protocol('INVALID_TOPIC_EXCEPTION', 17, false),
      'ERR_BROKER',
      false,
      'INVALID_TOPIC_EXCEPTION',
    ],
    [
      'retries exhausted on a final protocol error',
      exhausted(protocol('MESSAGE_TOO_LARGE', 10, false)),
      'ERR_BROKER',
      false,
      'MESSAGE_TOO_LARGE',
    ],
    ['an unknown error', new Error('something else'), 'ERR_BROKER', true, 'Error'],
  ])('%s', (_, err, code, canRetry, brokerCode) => {
    const e = kafkaError(err, 'produce to t');
    expect(e).toMatchObject({ code, canRetry, brokerCode });
    expect(e.message).toMatch(/^produce to t: /);
    expect(e.message).not.toContain('\n');
  });

  it('keeps the kafkajs error as the cause (its stack, type and flag read through)', () => {
    const err = protocol('GROUP_AUTHORIZATION_FAILED', 30, false);
    const e = kafkaError(err, 'join');
    const cause = e.cause as KafkaJSError & { type: string };
    expect(cause).toBeInstanceOf(kafkajs.KafkaJSProtocolError);
    expect([cause.type, cause.retriable, cause.stack]).toEqual([err.type, false, err.stack]);
    expect(kafkaError(e, 'again')).toBe(e); // already normalised
  });
});

describe('logBrokerError', () => {
  it('logs one line without the stack; the stack only at debug', () => {
    const lines: [string, object, string][] = [];
    const at =
      (level: string) =>
      (obj: object | string, msg?: string): void => {
        lines.push([level, obj as object, msg ?? '']);
      };
    const logger = {
      trace: at('trace'),
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      fatal: at('fatal'),
      child: () => logger,
    } as Logger;
    const err = kafkaError(new KafkaJSSASLAuthenticationError('bad password'), 'connect');
    logBrokerError(logger, 'error', err, 'consumer failed', { group: 'g' });
    expect(lines[0]).toEqual([
      'error',
      {
        group: 'g',
        err: 'connect: bad password',
        code: 'ERR_BROKER_AUTH',
        brokerCode: 'KafkaJSSASLAuthenticationError',
        canRetry: false,
      },
      'consumer failed',
    ]);
    expect(JSON.stringify(lines[0])).not.toContain('at ');
    expect(lines.slice(1).map(([level]) => level)).toEqual(['debug']);
    expect(lines[1]?.[1]).toMatchObject({ stack: expect.stringContaining('KafkaJSSASLAuthenticationError') });
  });
});
