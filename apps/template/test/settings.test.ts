import { CORE_SETTINGS, unknownSettings } from '@connector/core';
import { describe, expect, it } from 'vitest';
import { cli, SETTINGS } from '../src/index.js';

describe('template-connector settings', () => {
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
    expect(out).toMatch(/^usage: .*template-connector/);
    expect(out).toMatch(/interval +5s/);
    expect(out).toMatch(/gateway_url +http:\/\/gateway\.openfaas:8080/);
  });

  it('suggests the known name for a look-alike one', () => {
    const known = [...CORE_SETTINGS, ...SETTINGS].map((s) => s.name);
    expect(unknownSettings(known, { topik: 'x' })).toEqual([{ name: 'topik', suggestion: 'topic' }]);
  });
});
