import { describe, expect, it } from 'vitest';
import { headersOf } from './headers.js';

describe('headersOf', () => {
  it('hands the message id, system and message attributes over raw as X-SQS-*', () => {
    const raw = new Uint8Array([0, 255, 10]);
    const h = headersOf({
      MessageId: 'm-1',
      Attributes: { ApproximateReceiveCount: '2', MessageGroupId: 'g' },
      MessageAttributes: {
        kind: { DataType: 'String', StringValue: 'order' },
        n: { DataType: 'Number', StringValue: '7' },
        raw: { DataType: 'Binary', BinaryValue: raw },
        snow: { DataType: 'String', StringValue: 'snow ☃\r\n' },
        'bad name': { DataType: 'String', StringValue: 'kept: the invoker decides' },
      },
    });
    expect(h).toEqual({
      'X-SQS-Message-Id': 'm-1',
      'X-SQS-ApproximateReceiveCount': '2',
      'X-SQS-MessageGroupId': 'g',
      'X-SQS-kind': 'order',
      'X-SQS-n': '7',
      'X-SQS-raw': raw,
      'X-SQS-snow': 'snow ☃\r\n',
      'X-SQS-bad name': 'kept: the invoker decides',
    });
    // Binary values are the bytes themselves, not a copy or an encoding of them.
    expect(h['X-SQS-raw']).toBe(raw);
  });

  it('hands W3C trace context attributes over under their own names too (core continues the trace)', () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const h = headersOf({
      MessageAttributes: {
        traceparent: { DataType: 'String', StringValue: traceparent },
        tracestate: { DataType: 'String', StringValue: 'k=v' },
      },
    });
    expect(h).toEqual({
      'X-SQS-traceparent': traceparent,
      traceparent,
      'X-SQS-tracestate': 'k=v',
      tracestate: 'k=v',
    });
  });

  it('gives no header for an attribute without a value', () => {
    expect(headersOf({ MessageAttributes: { empty: { DataType: 'String' } }, Attributes: {} })).toEqual({});
  });
});
