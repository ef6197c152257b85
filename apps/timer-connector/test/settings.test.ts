import { CORE_SETTINGS, envNamesRead, unknownSettings } from '@connector/core';
import { timerSourceFromEnv } from '@connector/source-timer';
import { describe, expect, it } from 'vitest';
import { cli, TIMER_SETTINGS } from '../src/index.js';

describe('timer-connector settings', () => {
  it.each(['--help', '-h', 'help'])('%s lists env names with defaults and exits 0', async (flag) => {
    let out = '';
    const codes: number[] = [];
    const connector = await cli([flag], {
      stdout: (t) => {
        out += t;
      },
      stderr: (t) => {
        throw new Error(`unexpected stderr: ${t}`);
      },
      exit: (code) => void codes.push(code),
    });
    expect(connector).toBeUndefined();
    expect(codes).toEqual([0]);
    expect(out).toMatch(/^usage: .*timer-connector/);
    expect(out).toMatch(/mode +cron +cron \(schedule annotations\) or interval/);
    expect(out).toMatch(/gateway_url +http:\/\/gateway\.openfaas:8080/);
    expect(out).toMatch(/OTEL_EXPORTER_OTLP_TRACES_ENDPOINT +OTLP\/HTTP URL/); // the CLI's trace export
  });

  it('lists every name its source reader reads (the help tells the truth)', () => {
    timerSourceFromEnv({ mode: 'interval', interval: '1s', topic: 't' });
    const listed = [...CORE_SETTINGS, ...TIMER_SETTINGS].map((s) => s.name);
    expect([...envNamesRead()].filter((n) => !listed.includes(n))).toEqual([]);
  });

  it('suggests the known name for a look-alike one', () => {
    const known = [...CORE_SETTINGS, ...TIMER_SETTINGS].map((s) => s.name);
    expect(unknownSettings(known, { Mode: 'x', intervall: '1s' })).toEqual([
      { name: 'Mode', suggestion: 'mode' },
      { name: 'intervall', suggestion: 'interval' },
    ]);
  });
});
