import { describe, expect, it } from 'vitest';
import {
  CORE_SETTINGS,
  checkOptionKeys,
  closestName,
  configFromEnv,
  envNamesRead,
  settingsHelp,
  unknownSettings,
  wantsHelp,
} from './config.js';
import { type Connector, createConnector, runConnector } from './connector.js';
import { createController } from './controller.js';
import { ConfigError } from './errors.js';
import { connectorCli, startConnectorFromEnv } from './from-env.js';
import type { Source } from './source.js';
import type { Logger } from './types.js';

/** A Logger that keeps every line (children included). */
function memoryLogger(): Logger & { lines: { level: string; obj: unknown; msg: string | undefined }[] } {
  const lines: { level: string; obj: unknown; msg: string | undefined }[] = [];
  const make = (): Logger => {
    const at = (level: string) => (obj: object | string, msg?: string) =>
      void lines.push(typeof obj === 'string' ? { level, obj: {}, msg: obj } : { level, obj, msg });
    return {
      trace: at('trace'),
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      fatal: at('fatal'),
      child: () => make(),
    };
  };
  return Object.assign(make(), { lines });
}

const idle: Source = { name: 'idle', start: async () => undefined, stop: async () => undefined };

function thrown(f: () => unknown): ConfigError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('unknown settings', () => {
  const known = CORE_SETTINGS.map((s) => s.name).concat(['broker', 'topic', 'qos', 'mode']);

  it('suggests the known name for a misspelling, another case, or another connector spelling', () => {
    expect(
      unknownSettings(known, {
        gatway_url: 'x', // one letter missing
        GATEWAY_URL: 'x', // wrong case
        Log_Levle: 'x', // case + swapped letters
        broker_host: 'x', // the kafka connector's name for broker
        brokers: 'x',
        topci: 'x',
      }),
    ).toEqual([
      { name: 'gatway_url', suggestion: 'gateway_url' },
      { name: 'GATEWAY_URL', suggestion: 'gateway_url' },
      { name: 'Log_Levle', suggestion: 'log_level' },
      { name: 'broker_host', suggestion: 'broker' },
      { name: 'brokers', suggestion: 'broker' },
      { name: 'topci', suggestion: 'topic' },
    ]);
  });

  it('leaves known names, unrelated names and system variables alone', () => {
    expect(
      unknownSettings(known, {
        gateway_url: 'x',
        HOME: '/root', // one letter from mode, but upper case: a system variable
        PATH: '/bin',
        PWD: '/',
        _: '/usr/bin/env',
        id: 'x',
        something_else: 'x',
        NODE_OPTIONS: '',
      }),
    ).toEqual([]);
  });

  it('closestName maps option keys too: httpPort → http', () => {
    expect(closestName('httpPort', ['http', 'logger'])).toBe('http');
    expect(closestName('maxInflight', ['maxInFlight', 'maxInFlightPerFunction'])).toBe('maxInFlight');
    expect(closestName('zzz', ['http'])).toBeUndefined();
  });

  it('the env readers track the names they read: configFromEnv reads exactly CORE_SETTINGS', () => {
    configFromEnv({});
    const core = CORE_SETTINGS.map((s) => s.name);
    const read = [...envNamesRead()];
    expect(read.filter((n) => !core.includes(n) && n !== 'topic_delimiter')).toEqual([]);
    expect(core.filter((n) => !read.includes(n) && n !== 'topic_delimiter')).toEqual([]);
  });

  it('startConnectorFromEnv warns once per unknown setting, in one line', async () => {
    const logger = memoryLogger();
    const c = await startConnectorFromEnv({
      name: 'test-connector',
      env: { gatway_url: 'http://127.0.0.1:1', http_port: '0', brokr: 'mqtt://x', rebuild_interval: '1h' },
      source: () => idle,
      settings: [{ name: 'broker', help: 'the broker' }],
      signals: false,
      logger,
    });
    await c.stop();
    expect(logger.lines.filter((l) => l.msg?.startsWith('unknown setting')).map((l) => l.msg)).toEqual([
      'unknown setting gatway_url; did you mean gateway_url?',
      'unknown setting brokr; did you mean broker?',
    ]);
  });
});

describe('help', () => {
  it('recognises --help, -h, -help and help', () => {
    for (const a of ['--help', '-h', '-help', 'help']) expect(wantsHelp([a])).toBe(true);
    expect(wantsHelp(['-broker=x'])).toBe(false);
  });

  it("lists the app's settings and core's with their defaults", () => {
    const text = settingsHelp('x-connector', [
      { name: 'broker', default: 'mqtt://127.0.0.1:1883', help: 'b' },
    ]);
    expect(text).toMatch(/^usage: /);
    expect(text).toMatch(/ {2}broker +mqtt:\/\/127\.0\.0\.1:1883 +b\n/);
    expect(text).toMatch(/ {2}gateway_url +http:\/\/gateway\.openfaas:8080 +OpenFaaS gateway\n/);
    expect(text).toMatch(/ {2}http_port +8081 /);
  });
});

describe('programmatic options refuse unknown keys (plain JavaScript callers)', () => {
  it('createController, createConnector and runConnector name the key and the close known one', async () => {
    const bad = { httpPort: 8083 } as object;
    expect(thrown(() => createController({ gatewayUrl: 'http://127.0.0.1:1', ...bad })).message).toBe(
      'unknown option httpPort for createController; did you mean http?',
    );
    const controller = createController({ gatewayUrl: 'http://127.0.0.1:1' });
    expect(thrown(() => createConnector({ controller, source: idle, ...bad })).message).toBe(
      'unknown option httpPort for createConnector; did you mean http?',
    );
    const err = await runConnector({ controller, source: idle, signals: false, ...bad }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).setting).toBe('httpPort');
    expect(thrown(() => checkOptionKeys('x', { zzzz: 1 })).message).toBe('unknown option zzzz for x');
  });

  it('a configFromEnv result still spreads into both', () => {
    const config = configFromEnv({ gateway_url: 'http://127.0.0.1:1' });
    const controller = createController(config);
    expect(() => createConnector({ ...config, controller, source: idle })).not.toThrow();
  });
});

describe('connectorCli({ tracing })', () => {
  const io = (out: string[], codes: number[]) => ({
    stdout: (t: string) => void out.push(t),
    stderr: (t: string) => void out.push(t),
    exit: (c: number) => void codes.push(c),
  });
  const tracing = (events: string[]) => ({
    settings: [{ name: 'OTEL_EXPORTER_OTLP_ENDPOINT', help: 'collector' }],
    start(name: string) {
      events.push(`tracing start ${name}`);
      return { shutdown: async () => void events.push('tracing shutdown') };
    },
  });

  it('--help lists the tracing settings; nothing is started', async () => {
    const out: string[] = [];
    const codes: number[] = [];
    const events: string[] = [];
    await connectorCli({
      name: 'x-connector',
      settings: [],
      argv: ['--help'],
      start: () => Promise.reject(new Error('not started')),
      tracing: tracing(events),
      io: io(out, codes),
    });
    expect(out.join('')).toMatch(/OTEL_EXPORTER_OTLP_ENDPOINT +collector/);
    expect([codes, events]).toEqual([[0], []]);
  });

  it('starts tracing before the connector and shuts it down (flushing spans) after the connector stopped', async () => {
    const events: string[] = [];
    const connector = await connectorCli({
      name: 'x-connector',
      settings: [],
      argv: [],
      start: async () => {
        events.push('connector start');
        return { stop: async () => void events.push('connector stop') } as unknown as Connector;
      },
      tracing: tracing(events),
      io: io([], []),
    });
    await connector?.stop();
    expect(events).toEqual([
      'tracing start x-connector',
      'connector start',
      'connector stop',
      'tracing shutdown',
    ]);
  });

  it('a failed start shuts tracing down, then exits with one line', async () => {
    const out: string[] = [];
    const codes: number[] = [];
    const events: string[] = [];
    await connectorCli({
      name: 'x-connector',
      settings: [],
      argv: [],
      start: () => Promise.reject(ConfigError.invalid('broker', 'x', 'a URL')),
      tracing: tracing(events),
      io: io(out, codes),
    });
    expect([out, codes, events]).toEqual([
      ['x-connector: invalid broker="x": expected a URL\n'],
      [2],
      ['tracing start x-connector', 'tracing shutdown'],
    ]);
  });
});
