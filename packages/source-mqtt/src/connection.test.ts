import { describe, expect, it } from 'vitest';
import { mqttError } from './connection.js';

const connack = (code: number, message: string) =>
  Object.assign(new Error(`Connection refused: ${message}`), { name: 'ErrorWithReasonCode', code });

describe('mqttError (the MQTT_ERRORS table)', () => {
  it.each([
    [connack(4, 'Bad username or password'), 'ERR_BROKER_AUTH', false],
    [connack(5, 'Not authorized'), 'ERR_BROKER_AUTH', false],
    [connack(134, 'Bad User Name or Password'), 'ERR_BROKER_AUTH', false],
    [connack(135, 'Not authorized'), 'ERR_BROKER_AUTH', false],
    [connack(2, 'Identifier rejected'), 'ERR_BROKER', false],
    [connack(136, 'Server unavailable'), 'ERR_BROKER', true],
    [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
      'ERR_BROKER',
      true,
    ],
    [
      Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }),
      'ERR_BROKER',
      false,
    ],
    [new Error('something else'), 'ERR_BROKER', true],
  ])('%s → %s (canRetry %s)', (err, code, canRetry) => {
    const e = mqttError(err, 'connect to mqtt://h:1883');
    expect(e).toMatchObject({ code, canRetry });
    expect(e.message).toBe(`connect to mqtt://h:1883: ${err.message}`);
    expect(e.message).not.toContain('\n');
  });

  it('keeps the client code and the original error', () => {
    const err = connack(135, 'Not authorized');
    const e = mqttError(err, 'x');
    expect(e.brokerCode).toBe('135');
    expect((e.cause as Error).cause).toBe(err);
  });
});
