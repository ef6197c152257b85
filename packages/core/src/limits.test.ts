import { describe, expect, it } from 'vitest';
import { CORE_SETTINGS, configFromEnv } from './config.js';

describe('limits against hostile peers: settings', () => {
  it('max_message_bytes and max_topic_map_entries are read, listed with their defaults and validated', () => {
    expect(configFromEnv({ max_message_bytes: '1Mi', max_topic_map_entries: '500' })).toMatchObject({
      maxMessageBytes: 1024 * 1024,
      maxTopicMapEntries: 500,
    });
    expect(configFromEnv({})).not.toHaveProperty('maxMessageBytes');
    const listed = Object.fromEntries(CORE_SETTINGS.map((s) => [s.name, s.default]));
    expect(listed['max_message_bytes']).toBe('16MiB');
    expect(listed['max_topic_map_entries']).toBe('100000');
    expect(() => configFromEnv({ max_message_bytes: '0' })).toThrow(
      'invalid max_message_bytes="0": expected a size like 65536, 64Mi or 10MB',
    );
    expect(() => configFromEnv({ max_topic_map_entries: 'lots' })).toThrow(
      /^invalid max_topic_map_entries="lots"/,
    );
  });
});
