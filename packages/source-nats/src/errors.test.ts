import { AuthorizationError, ConnectionError, errors } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { natsError } from './errors.js';

describe('natsError', () => {
  it("normalises NATS.js errors through the table by the client's error name", () => {
    const auth = natsError(new AuthorizationError('Authorization Violation'), 'connect to nats://h:4222');
    expect(auth).toMatchObject({
      code: 'ERR_BROKER_AUTH',
      canRetry: false,
      brokerCode: 'AuthorizationError',
    });
    expect(auth.message).toBe('connect to nats://h:4222: Authorization Violation');
    expect(natsError(new ConnectionError('closed'), 'fetch')).toMatchObject({
      code: 'ERR_BROKER',
      canRetry: true,
    });
    expect(natsError(new errors.InvalidSubjectError('a..b'), 'subscribe')).toMatchObject({
      code: 'ERR_BROKER',
      canRetry: false,
    });
    const sock = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(natsError(sock, 'connect')).toMatchObject({
      code: 'ERR_BROKER',
      canRetry: true,
      brokerCode: 'ECONNREFUSED',
    });
    expect(natsError('weird', 'x')).toMatchObject({ code: 'ERR_BROKER', canRetry: true });
  });
});
