import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCertificates } from '@connector/testing';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  envFromGoFlags,
  mqttOptionsFromEnv,
  redactUrl,
  resolveMqttOptions,
  topicFilterProblem,
} from './options.js';
import { mqttSource } from './source.js';

function configError(fn: () => unknown): { code: string; setting: string; message: string } {
  try {
    fn();
  } catch (e) {
    return e as { code: string; setting: string; message: string };
  }
  throw new Error('expected a ConfigError');
}

describe('resolveMqttOptions', () => {
  it('fills in defaults', () => {
    const o = resolveMqttOptions({ broker: 'mqtt://127.0.0.1:1883' });
    expect(o).toMatchObject({
      clientId: 'openfaas-mqtt-connector',
      qos: 1,
      clean: false,
      protocolVersion: 5,
      sessionExpiry: Number.POSITIVE_INFINITY,
      topics: undefined,
      keepalive: 60_000,
      reconnectDelay: { min: 1000, max: 30_000 },
      receiveMaximum: 64,
      ordering: 'key',
      responseTopics: [],
    });
    expect(o.brokers.map(String)).toEqual(['mqtt://127.0.0.1:1883']);
  });

  it.each([
    [{ broker: 'http://x:1' }, 'broker', /mqtt:\/\//],
    [{ broker: 'not a url' }, 'broker', /a URL like mqtt:\/\/host:1883/],
    [{ broker: '' }, 'broker', /broker URL/],
    [{ broker: 'mqtt://h', qos: 3 }, 'qos', /invalid qos=3: expected 0, 1 or 2/],
    [{ broker: 'mqtt://h', protocolVersion: 6 }, 'protocolVersion', /expected 4 \(MQTT 3.1.1\), 5/],
    [{ broker: 'mqtt://h', topics: ['a/#/b'] }, 'topics', /'#' only as the last level/],
    [{ broker: 'mqtt://h', topics: ['a/b+'] }, 'topics', /whole level/],
    [{ broker: 'mqtt://h', topics: [] }, 'topics', /at least one topic filter/],
    [{ broker: 'mqtt://h', sharedGroup: 'a/b' }, 'sharedGroup', /without '\/'/],
    [{ broker: 'mqtt://h', password: 'p' }, 'password', /needs a username/],
    [{ broker: 'mqtt://h', tls: { cert: 'c' } }, 'tls', /both cert and key/],
    [{ broker: 'mqtt://h', tls: { ca: 'c' } }, 'broker', /mqtts:\/\//],
    [{ broker: 'mqtt://h', receiveMaximum: 0 }, 'receiveMaximum', /from 1 to 65535/],
    [{ broker: 'mqtt://h', ordering: 'topic' }, 'ordering', /invalid ordering="topic": expected key or none/],
    [{ broker: 'mqtt://h', keepalive: -1 }, 'keepalive', />= 0/],
    [{ broker: 'mqtt://h', responseTopics: ['a/#/b'] }, 'responseTopics', /'#' only as the last level/],
    [{ broker: 'mqtt://h', responseTopics: ['$share/g/r'] }, 'responseTopics', /no \$share/],
  ])('rejects %j naming %s in one line', (opts, setting, re) => {
    const e = configError(() => mqttSource(opts as never));
    expect(e.code).toBe('ERR_CONFIG');
    expect(e.setting).toBe(setting);
    expect(e.message).toMatch(re);
    expect(e.message).not.toContain('\n');
  });

  it('never shows a password from the broker URL in an error', () => {
    const e = configError(() => resolveMqttOptions({ broker: 'http://u:hunter2@h:1' }));
    expect(e.message).not.toContain('hunter2');
    expect(redactUrl('mqtt://u:hunter2@h:1883')).toBe('mqtt://u:[redacted]@h:1883');
  });

  it('validates topic filters like a broker', () => {
    expect(topicFilterProblem('a/+/c')).toBeUndefined();
    expect(topicFilterProblem('#')).toBeUndefined();
    expect(topicFilterProblem('a//b')).toBeUndefined();
    expect(topicFilterProblem('$share/g/a/#')).toBeUndefined();
    expect(topicFilterProblem('$share/g')).toMatch(/shared subscription/);
    expect(topicFilterProblem('')).toMatch(/non-empty/);
    expect(topicFilterProblem('a#')).toMatch(/whole level/);
  });
});

describe('mqttOptionsFromEnv', () => {
  it('reads ordering from the env (key or none)', () => {
    expect(mqttOptionsFromEnv({ broker: 'mqtt://h', ordering: 'none' }).ordering).toBe('none');
    expect(mqttOptionsFromEnv({ broker: 'mqtt://h' }).ordering).toBeUndefined();
    expect(() => mqttOptionsFromEnv({ broker: 'mqtt://h', ordering: 'fifo' })).toThrow(
      'invalid ordering="fifo": expected key or none',
    );
  });

  it('reads the Go connector names and the new ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mqtt-env-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const certs = testCertificates(dir);
    writeFileSync(join(dir, 'pw'), 'from-file\n');
    const o = mqttOptionsFromEnv({
      broker: 'tcp://broker:1883, ssl://backup:8883',
      topic: 'sensors/+/temp, alerts/#',
      id: 'my-id',
      qos: '2',
      clean: 'true',
      username: 'u',
      password_file: join(dir, 'pw'),
      protocol_version: '3.1.1',
      ca_file: certs.ca,
      reject_unauthorized: 'false',
      session_expiry: '1h',
      shared_group: 'workers',
      trim_channel_key: 'true',
      keepalive: '30',
      redelivery_delay: '2s',
      response_topics: 'replies/#, rpc/+/out',
    });
    expect(o).toMatchObject({
      broker: ['tcp://broker:1883', 'ssl://backup:8883'],
      topics: ['sensors/+/temp', 'alerts/#'],
      clientId: 'my-id',
      qos: 2,
      clean: true,
      username: 'u',
      password: 'from-file',
      protocolVersion: 4,
      sessionExpiry: 3_600_000,
      sharedGroup: 'workers',
      trimChannelKey: true,
      keepalive: 30_000,
      redeliveryDelay: 2000,
      responseTopics: ['replies/#', 'rpc/+/out'],
    });
    expect(String(o.tls?.ca)).toContain('-----BEGIN CERTIFICATE-----');
    // read and checked at start (core's readTlsFiles): a CA file without a certificate is refused here
    expect(() => mqttOptionsFromEnv({ broker: 'mqtts://h', ca_file: join(dir, 'pw') })).toThrow(
      /^invalid ca_file=".*pw": expected a PEM file holding a certificate/,
    );
    expect(o.tls?.rejectUnauthorized).toBe(false);
    expect(mqttOptionsFromEnv({ broker: 'mqtt://h', session_expiry: 'never' }).sessionExpiry).toBe(
      Number.POSITIVE_INFINITY,
    );
    expect(mqttOptionsFromEnv({ broker: 'mqtt://h' }).topics).toBeUndefined();
  });

  it.each([
    [{}, 'broker', /missing broker/],
    [{ broker: 'mqtt://h', qos: 'high' }, 'qos', /invalid qos="high": expected an integer from 0 to 2/],
    [{ broker: 'mqtt://h', clean: 'maybe' }, 'clean', /true or false/],
    [{ broker: 'mqtt://h', protocol_version: '6' }, 'protocol_version', /3.1.1/],
    [{ broker: 'mqtt://h', topic: 'a/#/b' }, 'topic', /invalid topic="a\/#\/b"/],
    [{ broker: 'mqtt://h', topics: 'a+' }, 'topics', /whole level/],
    [{ broker: 'mqtts://h', ca_file: '/nonexistent/ca.pem' }, 'ca_file', /readable file \(ENOENT\)/],
    [{ broker: 'mqtts://h', cert_file: '/x' }, 'key_file', /missing key_file/],
    [{ broker: 'mqtt://h', session_expiry: 'soon' }, 'session_expiry', /duration/],
    [{ broker: 'mqtt://h', shared_group: 'a#' }, 'shared_group', /without/],
    [{ broker: 'mqtt://h', password: 'secret-value' }, 'password', /needs a username/],
    [
      { broker: 'mqtt://h', response_topics: 'replies/#,a+' },
      'response_topics',
      /invalid response_topics="a\+"/,
    ],
  ])('rejects %j naming the variable', (env, setting, re) => {
    const e = configError(() => mqttOptionsFromEnv(env));
    expect(e.code).toBe('ERR_CONFIG');
    expect(e.setting).toBe(setting);
    expect(e.message).toMatch(re);
    expect(e.message).not.toContain('secret-value');
  });
});

describe('envFromGoFlags', () => {
  it('maps the Go connector flags to env names', () => {
    expect(
      envFromGoFlags([
        '-broker=tcp://emitter:8080',
        '-topic',
        'KEY/sensor-data/',
        '--id=testgoid',
        '-qos=1',
        '-trim-channel-key',
        '-clean=false',
        '-gateway=http://gateway:8080',
        '-async-invoke',
      ]),
    ).toEqual({
      broker: 'tcp://emitter:8080',
      topic: 'KEY/sensor-data/',
      id: 'testgoid',
      qos: '1',
      trim_channel_key: 'true',
      clean: 'false',
      gateway_url: 'http://gateway:8080',
      async_invocation: 'true',
    });
  });

  it('rejects unknown flags and missing values in one line', () => {
    expect(configError(() => envFromGoFlags(['-nope=1'])).message).toMatch(
      /unknown flag -nope: expected one of/,
    );
    expect(configError(() => envFromGoFlags(['-broker'])).message).toMatch(/needs a value/);
    expect(configError(() => envFromGoFlags(['stray'])).setting).toBe('args');
  });
});
