import { CORE_SETTINGS, envNamesRead, unknownSettings } from '@connector/core';
import { mqttOptionsFromEnv } from '@connector/source-mqtt';
import { describe, expect, it } from 'vitest';
import { cli, MQTT_SETTINGS } from '../src/index.js';

describe('mqtt-connector settings', () => {
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
    expect(out).toMatch(/^usage: .*mqtt-connector/);
    expect(out).toMatch(/broker +\(required\)/);
    expect(out).toMatch(/gateway_url +http:\/\/gateway\.openfaas:8080/);
  });

  it('lists every name its source reader reads (the help tells the truth)', () => {
    mqttOptionsFromEnv({ broker: 'mqtt://127.0.0.1:1883', topic: 'a/b' });
    const listed = [...CORE_SETTINGS, ...MQTT_SETTINGS].map((s) => s.name);
    expect([...envNamesRead()].filter((n) => !listed.includes(n))).toEqual([]);
  });

  it('suggests the known name for a look-alike one', () => {
    const known = [...CORE_SETTINGS, ...MQTT_SETTINGS].map((s) => s.name);
    expect(unknownSettings(known, { broker_host: 'x', brokr: 'x' })).toEqual([
      { name: 'broker_host', suggestion: 'broker' },
      { name: 'brokr', suggestion: 'broker' },
    ]);
  });
});
