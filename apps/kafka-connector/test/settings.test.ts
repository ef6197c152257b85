import { CORE_SETTINGS, envNamesRead, unknownSettings } from '@connector/core';
import { kafkaOptionsFromEnv } from '@connector/source-kafka';
import { describe, expect, it } from 'vitest';
import { cli, KAFKA_SETTINGS } from '../src/index.js';

describe('kafka-connector settings', () => {
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
    expect(out).toMatch(/^usage: .*kafka-connector/);
    expect(out).toMatch(/brokers +\(required\)/);
    expect(out).toMatch(/gateway_url +http:\/\/gateway\.openfaas:8080/);
  });

  it('lists every name its source reader reads (the help tells the truth)', () => {
    kafkaOptionsFromEnv({ brokers: '127.0.0.1:9092' });
    const listed = [...CORE_SETTINGS, ...KAFKA_SETTINGS].map((s) => s.name);
    expect([...envNamesRead()].filter((n) => !listed.includes(n))).toEqual([]);
  });

  it('suggests the known name for a look-alike one', () => {
    const known = [...CORE_SETTINGS, ...KAFKA_SETTINGS].map((s) => s.name);
    expect(unknownSettings(known, { broker: 'x', topic: 'x' })).toEqual([
      { name: 'broker', suggestion: 'brokers' },
      { name: 'topic', suggestion: 'topics' },
    ]);
  });
});
