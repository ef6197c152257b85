import { describe, expect, it } from 'vitest';
import { toMessage } from './source.js';

const record = (timestamp: string) => ({
  topic: 'orders',
  partition: 2,
  offset: '41',
  key: null,
  value: Buffer.from('{}'),
  timestamp,
  headers: {},
});

describe('toMessage', () => {
  it("takes the record's timestamp (ms) as the message time, for a function's max-age", () => {
    const m = toMessage(record('1700000000123'));
    expect(m.timestamp).toBe(1_700_000_000_123);
    expect(m.id).toBe('orders/2/41');
  });

  it('leaves the time out when the record has none (-1 or empty), so the age counts from the first attempt', () => {
    expect(toMessage(record('-1')).timestamp).toBeUndefined();
    expect(toMessage(record('')).timestamp).toBeUndefined();
  });
});
