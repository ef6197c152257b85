import { CORE_SETTINGS, envNamesRead, unknownSettings } from '@connector/core';
import { rabbitmqOptionsFromEnv } from '@connector/source-rabbitmq';
import { describe, expect, it } from 'vitest';
import { cli, RABBITMQ_SETTINGS } from '../src/index.js';

describe('rabbitmq-connector settings', () => {
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
    expect(out).toMatch(/^usage: .*rabbitmq-connector/);
    expect(out).toMatch(/rabbitmq_url +\(required\)/);
    expect(out).toMatch(/gateway_url +http:\/\/gateway\.openfaas:8080/);
  });

  it('lists every name its source reader reads (the help tells the truth)', () => {
    rabbitmqOptionsFromEnv({ rabbitmq_url: 'amqp://127.0.0.1:5672' });
    const listed = [...CORE_SETTINGS, ...RABBITMQ_SETTINGS].map((s) => s.name);
    expect([...envNamesRead()].filter((n) => !listed.includes(n))).toEqual([]);
  });

  it('suggests the known name for a look-alike one', () => {
    const known = [...CORE_SETTINGS, ...RABBITMQ_SETTINGS].map((s) => s.name);
    expect(unknownSettings(known, { rabbit_url: 'x', exchang: 'x' })).toEqual([
      { name: 'rabbit_url', suggestion: 'rabbitmq_url' },
      { name: 'exchang', suggestion: 'exchange' },
    ]);
  });
});
