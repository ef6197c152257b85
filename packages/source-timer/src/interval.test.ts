import { describe, expect, it } from 'vitest';
import { intervalSource } from './interval.js';

describe('intervalSource options', () => {
  it('refuses bad options with one line naming the setting', () => {
    expect(() => intervalSource({ interval: 0, topic: 't' })).toThrow(
      'invalid interval=0: expected a positive number of milliseconds',
    );
    expect(() => intervalSource({ interval: Number.NaN, topic: 't' })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', setting: 'interval' }),
    );
    expect(() => intervalSource({ interval: 10, topic: ' ' })).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG',
        setting: 'topic',
        message: 'invalid topic=" ": expected a non-empty topic',
      }),
    );
  });

  it('counts nothing and is disconnected until started', () => {
    const source = intervalSource({ interval: 1000, topic: 't' });
    expect([source.name, source.ticks, source.skipped]).toEqual(['timer', 0, 0]);
    expect(source.health?.()).toEqual({ connected: false });
  });
});
