import { describe, expect, it } from 'vitest';
import { timerSourceFromEnv } from './env.js';

describe('timerSourceFromEnv', () => {
  it('defaults to the cron connector', () => {
    const { source, options } = timerSourceFromEnv({});
    expect(options).toEqual({ mode: 'cron', topic: 'cron-function' });
    expect(source.name).toBe('cron');
    expect(timerSourceFromEnv({ topic: 'nightly', timezone: 'Europe/Berlin' }).options).toEqual({
      mode: 'cron',
      topic: 'nightly',
      timezone: 'Europe/Berlin',
    });
  });

  it('reads interval mode', () => {
    const { source, options } = timerSourceFromEnv({
      mode: 'interval',
      interval: '1m30s',
      topic: 'tick',
      body: 'hi',
    });
    expect(options).toEqual({ mode: 'interval', topic: 'tick', interval: 90_000, body: 'hi' });
    expect(source.name).toBe('timer');
  });

  it.each([
    [{ mode: 'hourly' }, 'mode'],
    [{ mode: 'interval', topic: 't' }, 'interval'],
    [{ mode: 'interval', interval: '5', topic: 't' }, 'interval'],
    [{ mode: 'interval', interval: '5s' }, 'topic'],
    [{ timezone: 'Mars/Olympus' }, 'timezone'],
  ])('%j fails naming %s', (env, setting) => {
    let error: unknown;
    try {
      timerSourceFromEnv(env);
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'ERR_CONFIG', setting });
    expect((error as Error).message).not.toContain('\n');
    expect((error as Error).message).toContain(setting);
  });
});
