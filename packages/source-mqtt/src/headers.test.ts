import type { IPublishPacket } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { allowedHeaderName, contentTypeOf, headersFromPacket, headerValue } from './headers.js';

const packet = (extra: Partial<IPublishPacket> = {}): IPublishPacket => ({
  cmd: 'publish',
  topic: 'a/b',
  payload: Buffer.from('x'),
  qos: 1,
  dup: false,
  retain: false,
  messageId: 7,
  ...extra,
});

describe('headersFromPacket', () => {
  it('describes a 3.1.1 packet', () => {
    expect(headersFromPacket(packet({ retain: true, dup: true }))).toEqual({
      'X-MQTT-Topic': 'a/b',
      'X-MQTT-Qos': '1',
      'X-MQTT-Retain': 'true',
      'X-MQTT-Dup': 'true',
    });
  });

  it('turns MQTT 5 properties into headers and drops what HTTP cannot or must not carry', () => {
    const h = headersFromPacket(
      packet({
        properties: {
          userProperties: {
            traceparent: '00-abc-01',
            Multi: ['a', 'b'],
            'with space': 'x',
            'Content-Length': '5',
            'X-Topic': 'spoof',
            'X-MQTT-Topic': 'spoof',
            'X-Callback-Url': 'http://evil',
            Line: 'a\r\nInjected: 1',
            Utf8: 'grüße ✓',
          },
          correlationData: Buffer.from([0, 1, 2]),
          responseTopic: 'r/t',
          contentType: 'application/json',
        },
      }),
    );
    expect(h).toEqual({
      traceparent: '00-abc-01',
      Multi: 'a, b',
      Utf8: Buffer.from('grüße ✓', 'utf8').toString('latin1'),
      'X-MQTT-Topic': 'a/b',
      'X-MQTT-Qos': '1',
      'X-MQTT-Retain': 'false',
      'X-MQTT-Response-Topic': 'r/t',
      'X-MQTT-Correlation-Data': 'AAEC',
    });
    expect(contentTypeOf(packet({ properties: { contentType: 'application/json' } }))).toBe(
      'application/json',
    );
    expect(contentTypeOf(packet())).toBeUndefined();
  });

  it('checks names and values', () => {
    expect(allowedHeaderName('X-Trace')).toBe(true);
    expect(allowedHeaderName('Host')).toBe(false);
    expect(allowedHeaderName('a:b')).toBe(false);
    expect(headerValue('tab\tok')).toBe('tab\tok');
    expect(headerValue('nul\u0000')).toBeUndefined();
  });
});
