import { describe, expect, it } from 'vitest';
import { sqsError } from './errors.js';

const named = (name: string, message = 'x') => Object.assign(new Error(message), { name });

describe('sqsError', () => {
  it.each([
    ['AccessDenied', 'ERR_BROKER_AUTH', false],
    ['AccessDeniedException', 'ERR_BROKER_AUTH', false],
    ['InvalidClientTokenId', 'ERR_BROKER_AUTH', false],
    ['UnrecognizedClientException', 'ERR_BROKER_AUTH', false],
    ['SignatureDoesNotMatch', 'ERR_BROKER_AUTH', false],
    ['ExpiredToken', 'ERR_BROKER_AUTH', false],
    ['QueueDoesNotExist', 'ERR_BROKER', false],
    ['AWS.SimpleQueueService.NonExistentQueue', 'ERR_BROKER', false],
    ['InvalidParameterValue', 'ERR_BROKER', false],
    ['ThrottlingException', 'ERR_BROKER', true],
    ['RequestThrottled', 'ERR_BROKER', true],
    ['ServiceUnavailable', 'ERR_BROKER', true],
    ['TimeoutError', 'ERR_BROKER', true],
    ['SomethingNew', 'ERR_BROKER', true],
  ])('%s → %s, canRetry %s', (name, code, canRetry) => {
    const e = sqsError(named(name, 'the reason'), 'ReceiveMessage on q');
    expect(e).toMatchObject({ code, canRetry, brokerCode: name, message: 'ReceiveMessage on q: the reason' });
  });

  it('normalises a Node network error by its code', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    expect(sqsError(refused, 'ReceiveMessage on q')).toMatchObject({
      code: 'ERR_BROKER',
      canRetry: true,
      brokerCode: 'ECONNREFUSED',
    });
  });
});
