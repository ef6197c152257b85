import { describe, expect, it } from 'vitest';
import { amqpError, replyCodeName } from './errors.js';

describe('amqpError', () => {
  it('maps AMQP reply codes and socket codes through the table', () => {
    const refused = amqpError(
      new Error(
        'Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused"',
      ),
      'connecting to h:5672',
    );
    expect([refused.code, refused.canRetry, refused.brokerCode]).toEqual([
      'ERR_BROKER_AUTH',
      false,
      'ACCESS_REFUSED',
    ]);
    expect(refused.message).toMatch(/^connecting to h:5672: Handshake terminated by server: 403/);

    const precondition = amqpError(
      Object.assign(new Error('PRECONDITION_FAILED - inequivalent arg'), { code: 406 }),
      'declaring queue q',
    );
    expect([precondition.code, precondition.canRetry]).toEqual(['ERR_BROKER', false]);

    const forced = amqpError(
      Object.assign(new Error('Connection closed: 320 (CONNECTION-FORCED)'), { code: 320 }),
      'x',
    );
    expect([forced.code, forced.canRetry]).toEqual(['ERR_BROKER', true]);

    const refusedSocket = amqpError(
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      'x',
    );
    expect([refusedSocket.code, refusedSocket.canRetry, refusedSocket.brokerCode]).toEqual([
      'ERR_BROKER',
      true,
      'ECONNREFUSED',
    ]);

    const unknown = amqpError(new Error('something odd'), 'x');
    expect([unknown.code, unknown.canRetry]).toEqual(['ERR_BROKER', true]);
  });

  it('knows the reply-code names', () => {
    expect(replyCodeName({ code: 404 })).toBe('NOT_FOUND');
    expect(replyCodeName({ code: 'ECONNRESET' })).toBeUndefined();
  });
});
