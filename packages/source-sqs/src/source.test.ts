import { describe, expect, it } from 'vitest';
import { headersOf, headerValue } from './source.js';

describe('headers', () => {
  it('keeps printable ASCII and percent-encodes what a header cannot carry', () => {
    expect(headerValue('plain value, 42%')).toBe('plain value, 42%');
    expect(headerValue('tab\tok')).toBe('tab\tok');
    expect(headerValue('snow ☃')).toBe('snow%20%E2%98%83');
    expect(headerValue('a\r\nb')).toBe('a%0D%0Ab');
    expect(headerValue('café')).toBe('caf%C3%A9');
  });

  it('maps the message id, system and message attributes to X-SQS-*', () => {
    expect(
      headersOf({
        MessageId: 'm-1',
        Attributes: { ApproximateReceiveCount: '2', MessageGroupId: 'g' },
        MessageAttributes: {
          kind: { DataType: 'String', StringValue: 'order' },
          n: { DataType: 'Number', StringValue: '7' },
          raw: { DataType: 'Binary', BinaryValue: new Uint8Array([0, 255]) },
          'bad name': { DataType: 'String', StringValue: 'dropped' },
        },
      }),
    ).toEqual({
      'X-SQS-Message-Id': 'm-1',
      'X-SQS-ApproximateReceiveCount': '2',
      'X-SQS-MessageGroupId': 'g',
      'X-SQS-kind': 'order',
      'X-SQS-n': '7',
      'X-SQS-raw': 'AP8=',
    });
  });
});
