import type { IPublishPacket } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { headersOf, toSourceMessage } from './message.js';

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

describe('headersOf', () => {
  it('describes a 3.1.1 packet', () => {
    expect({ ...headersOf(packet({ retain: true, dup: true })) }).toEqual({
      'X-MQTT-Topic': 'a/b',
      'X-MQTT-Qos': '1',
      'X-MQTT-Packet-Id': '7',
      'X-MQTT-Retain': 'true',
      'X-MQTT-Dup': 'true',
    });
  });

  it('inherits no names without user properties either (a lookup of any other name finds nothing)', () => {
    const h = headersOf(packet());
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty'])
      expect(h[name], name).toBeUndefined();
    expect(Object.keys(h)).toEqual(['X-MQTT-Topic', 'X-MQTT-Qos', 'X-MQTT-Packet-Id', 'X-MQTT-Retain']);
  });

  it('hands user properties over raw (core decides what reaches the function); only X-MQTT-* is its own', () => {
    const h = headersOf(
      packet({
        topic: 'grüße/✓',
        properties: {
          userProperties: {
            traceparent: '00-abc-01',
            Multi: ['a', 'b'],
            'with space': 'x',
            'Content-Length': '5',
            Host: 'evil',
            'X-Topic': 'spoof',
            Line: 'a\r\nInjected: 1',
            Utf8: 'grüße ✓',
            ['__proto__']: 'plain header',
            'X-MQTT-Topic': 'spoof',
            'x-mqtt-dup': 'true',
          },
          correlationData: Buffer.from([0, 1, 2]),
          responseTopic: 'r/ü',
          contentType: 'application/json',
        },
      }),
    );
    expect(Object.getPrototypeOf(h)).toBeNull();
    expect({ ...h }).toEqual({
      traceparent: '00-abc-01',
      Multi: 'a, b',
      'with space': 'x',
      'Content-Length': '5',
      Host: 'evil',
      'X-Topic': 'spoof',
      Line: 'a\r\nInjected: 1',
      Utf8: 'grüße ✓',
      ['__proto__']: 'plain header',
      'X-MQTT-Topic': 'grüße/✓',
      'X-MQTT-Qos': '1',
      'X-MQTT-Packet-Id': '7',
      'X-MQTT-Retain': 'false',
      'X-MQTT-Response-Topic': 'r/ü',
      'X-MQTT-Correlation-Data': 'AAEC',
    });
  });
});

describe('toSourceMessage', () => {
  it('maps topic, body, id, ordering key and the raw content type', () => {
    const m = toSourceMessage(packet({ properties: { contentType: 'text/plain; charset=ütf-8' } }), false);
    expect(m).toMatchObject({
      topic: 'a/b',
      orderingKey: 'a/b',
      contentType: 'text/plain; charset=ütf-8',
    });
    expect(Buffer.from(m.body).toString()).toBe('x');
    const q0 = toSourceMessage(packet({ qos: 0, topic: 'KEY/s/t' }), true);
    expect(q0.topic).toBe('s/t');
    // Ids are the connector's own and unique (packet ids are reused); the packet id travels as a header.
    expect(m.headers?.['X-MQTT-Packet-Id']).toBe('7');
    expect(q0.headers?.['X-MQTT-Packet-Id']).toBeUndefined();
    expect(m.id).toMatch(/^[\w-]+\.\d+$/);
    expect(q0.id).not.toBe(m.id);
    expect(toSourceMessage(packet({}), false).id).not.toBe(m.id); // the same packet id again: a new message id
    expect(q0.contentType).toBeUndefined();
    expect(q0.headers?.['X-MQTT-Topic']).toBe('KEY/s/t');
  });
});
