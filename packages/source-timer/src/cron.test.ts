import { describe, expect, it } from 'vitest';
import { cronSource, scheduleProblem } from './cron.js';

describe('scheduleProblem', () => {
  it('accepts 5-field, 6-field (seconds first) and nickname schedules', () => {
    expect(scheduleProblem('*/5 * * * *')).toBeUndefined();
    expect(scheduleProblem('*/5 * * * * *')).toBeUndefined();
    expect(scheduleProblem('*/1 * * * * *')).toBeUndefined();
    expect(scheduleProblem('30 7 * * 1-5')).toBeUndefined();
    expect(scheduleProblem('@hourly')).toBeUndefined();
    expect(scheduleProblem('0 9 * * *', 'Europe/Berlin')).toBeUndefined();
  });

  it('names what is wrong with the others', () => {
    expect(scheduleProblem('* * *')).toBe(
      'expected 5 fields (minute hour day month weekday) or 6 with seconds first, got 3',
    );
    expect(scheduleProblem('0 0 0 1 1 * 2030')).toMatch(/got 7/);
    expect(scheduleProblem('61 * * * *')).toMatch(/minute/);
    expect(scheduleProblem('every tuesday')).toMatch(/got 2/);
    expect(scheduleProblem('@reboot')).toBeTruthy();
  });
});

describe('cronSource options', () => {
  it('fails fast with one line naming the setting', () => {
    expect(() => cronSource({ topic: ' ' })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', setting: 'topic' }),
    );
    expect(() => cronSource({ scheduleAnnotation: '' })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', setting: 'scheduleAnnotation' }),
    );
    expect(() => cronSource({ timezone: 'Mars/Olympus' })).toThrow(
      'invalid timezone="Mars/Olympus": expected an IANA timezone like Europe/Berlin',
    );
  });

  it('is idle and disconnected until started', () => {
    const source = cronSource({ timezone: 'UTC' });
    expect(source.name).toBe('cron');
    expect(source.scheduled()).toEqual([]);
    expect(source.health?.()).toEqual({ connected: false, detail: { scheduled: 0 } });
  });
});
