import { CORE_SETTINGS, envNamesRead, unknownSettings } from '@connector/core';
import { natsOptionsFromEnv } from '@connector/source-nats';
import { describe, expect, it } from 'vitest';
import { cli, NATS_SETTINGS } from '../src/index.js';

describe('nats-connector settings', () => {
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
    expect(out).toMatch(/^usage: .*nats-connector/);
    expect(out).toMatch(/stream +\(required in jetstream mode\)/);
    expect(out).toMatch(/gateway_url +http:\/\/gateway\.openfaas:8080/);
  });

  it('lists every name its source reader reads (the help tells the truth)', () => {
    natsOptionsFromEnv({ stream: 'EVENTS' });
    const listed = [...CORE_SETTINGS, ...NATS_SETTINGS].map((s) => s.name);
    expect([...envNamesRead()].filter((n) => !listed.includes(n))).toEqual([]);
  });

  it('suggests the known name for a look-alike one', () => {
    const known = [...CORE_SETTINGS, ...NATS_SETTINGS].map((s) => s.name);
    expect(unknownSettings(known, { nats_ur: 'x', strem: 'x' })).toEqual([
      { name: 'nats_ur', suggestion: 'nats_url' },
      { name: 'strem', suggestion: 'stream' },
    ]);
  });
});
