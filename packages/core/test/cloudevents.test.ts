import { type RecordedRequest, startGateway, type TestGateway } from '@connector/testing';
import { type CloudEvent, HTTP } from 'cloudevents';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type CloudEventsMode,
  ConfigError,
  configFromEnv,
  createCloudEvents,
  createConnector,
  createController,
  createInvoker,
  encodeCloudEventValue,
  type SourceMessage,
} from '../src/index.js';
import { memorySource, waitFor } from './helpers.js';

// What a function receives with cloudevents=binary|structured|off, checked by parsing the recorded request with the
// CloudEvents SDK (HTTP.toEvent), as a function using the SDK would.

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(opts: {
  cloudEvents?: CloudEventsMode;
  cloudEventsType?: string;
  contentType?: string;
  functions?: string[];
}) {
  const g: TestGateway = await startGateway({
    functions: (opts.functions ?? ['f']).map((name) => ({ name, annotations: { topic: 'sensors/a b' } })),
  });
  cleanups.push(() => g.close());
  const controller = createController({
    gatewayUrl: g.url,
    rebuildInterval: 60_000,
    connectorName: 'conn',
    ...(opts.cloudEvents === undefined ? {} : { cloudEvents: opts.cloudEvents }),
    ...(opts.cloudEventsType === undefined ? {} : { cloudEventsType: opts.cloudEventsType }),
    ...(opts.contentType === undefined ? {} : { contentType: opts.contentType }),
  });
  const mem = memorySource('mqtt');
  const connector = createConnector({
    controller,
    source: mem.source,
    drainTimeout: 5000,
    retry: { minDelay: 1, maxDelay: 5 },
  });
  cleanups.push(() => connector.stop());
  await connector.start();
  /** Deliver one message; the requests of the first function once it is acked. */
  const deliver = async (m: Partial<SourceMessage>, fn = 'f.openfaas-fn') => {
    const before = mem.acked.length;
    mem.push({ topic: 'sensors/a b', body: Buffer.from(''), ...m });
    await waitFor(() => mem.acked.length > before, { message: 'message acked' });
    return g.invocations(fn);
  };
  return { g, deliver };
}

/** The recorded request as the SDK sees an HTTP message. */
function toEvent(r: RecordedRequest | undefined): CloudEvent<unknown> {
  if (r === undefined) throw new Error('no invocation');
  const parsed = HTTP.toEvent({ headers: r.headers, body: r.body.toString('utf8') });
  if (Array.isArray(parsed)) throw new Error('a batch');
  const event = parsed as CloudEvent<unknown>;
  event.validate(); // strict: throws when the event breaks the spec
  return event;
}

const ceHeaders = (r: RecordedRequest | undefined) =>
  Object.keys(r?.headers ?? {}).filter((h) => h.startsWith('ce-') || h.startsWith('ce_'));

const TOPIC_SOURCE = '/connector/conn/mqtt/sensors%2Fa%20b';
const STAMP = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

describe('cloudevents=binary', () => {
  it('sends ce- headers the SDK parses: broker id, source URI, derived type, the message time, topic as subject', async () => {
    const { deliver } = await setup({ cloudEvents: 'binary' });
    const [r] = await deliver({
      body: Buffer.from('{"t":21.5}'),
      contentType: 'application/json',
      id: 'packet-7',
      timestamp: STAMP,
      headers: { 'x-device': 'd1' },
    });
    const e = toEvent(r);
    expect(e).toMatchObject({
      specversion: '1.0',
      id: 'packet-7',
      type: 'dev.connector.mqtt.message',
      time: new Date(STAMP).toISOString(),
      datacontenttype: 'application/json',
      data: { t: 21.5 },
    });
    // Header values are percent-encoded per the HTTP binding (one round of decoding gives the attribute; the JS SDK
    // does not decode): the topic has a space, and the source URI has '%'.
    expect(r?.headers['ce-subject']).toBe('sensors/a%20b');
    expect(decodeURIComponent(e.subject as string)).toBe('sensors/a b');
    expect(r?.headers['ce-source']).toBe('/connector/conn/mqtt/sensors%252Fa%2520b');
    expect(decodeURIComponent(e.source)).toBe(TOPIC_SOURCE);
    expect(r?.headers['content-type']).toBe('application/json');
    expect(r?.body.toString()).toBe('{"t":21.5}'); // binary mode: the body as it is
    expect(r?.headers['x-device']).toBe('d1');
    expect(r?.headers['x-topic']).toBe('sensors/a b');
  });

  it('a message without id or timestamp: one generated id and time, the same for every function and retry', async () => {
    const { g, deliver } = await setup({ cloudEvents: 'binary', functions: ['f', 'h'] });
    g.fault('f.openfaas-fn', { status: 503, times: 1 });
    const before = Date.now();
    const rs = await deliver({ body: Buffer.from('x'), contentType: 'text/plain' });
    const hs = g.invocations('h.openfaas-fn');
    expect(rs).toHaveLength(2); // a 503, then the retry
    const events = [...rs, ...hs].map(toEvent);
    expect(events[0]?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    for (const e of events) {
      expect(e.id).toBe(events[0]?.id);
      expect(e.time).toBe(events[0]?.time);
    }
    expect(Date.parse(events[0]?.time as string)).toBeGreaterThanOrEqual(before);
    // The next message gets an id of its own.
    const next = await deliver({ body: Buffer.from('y'), contentType: 'text/plain' });
    expect(toEvent(next[2]).id).not.toBe(events[0]?.id);
  });

  it('cloudEventsType sets the type', async () => {
    const { deliver } = await setup({ cloudEvents: 'binary', cloudEventsType: 'com.example.reading' });
    const [r] = await deliver({ body: Buffer.from('1'), id: '1' });
    expect(toEvent(r).type).toBe('com.example.reading');
  });

  it('message headers in the ce- namespace that do not make an event are not forwarded (no injected attributes)', async () => {
    const { deliver } = await setup({ cloudEvents: 'binary' });
    const [r] = await deliver({
      body: Buffer.from('1'),
      id: 'm1',
      headers: { 'ce-id': 'forged', ce_extra: 'x' },
    });
    expect(r?.headers['ce-id']).toBe('m1');
    expect(r?.headers['ce-extra']).toBeUndefined();
    expect(r?.headers['ce_extra']).toBeUndefined();
  });
});

describe('cloudevents=structured', () => {
  it('a JSON body of a JSON content type is the event data', async () => {
    const { deliver } = await setup({ cloudEvents: 'structured' });
    const [r] = await deliver({
      body: Buffer.from('{"t":[1,2]}'),
      contentType: 'application/json',
      id: 'packet-8',
      timestamp: STAMP,
    });
    expect(r?.headers['content-type']).toBe('application/cloudevents+json; charset=utf-8');
    expect(ceHeaders(r)).toEqual([]);
    const e = toEvent(r);
    expect(e).toMatchObject({
      specversion: '1.0',
      id: 'packet-8',
      source: TOPIC_SOURCE,
      type: 'dev.connector.mqtt.message',
      subject: 'sensors/a b',
      time: new Date(STAMP).toISOString(),
      datacontenttype: 'application/json',
      data: { t: [1, 2] },
    });
  });

  it('other bodies (not JSON, or JSON without a JSON content type) go as data_base64, byte for byte', async () => {
    const { deliver } = await setup({ cloudEvents: 'structured' });
    const bytes = Buffer.from([0, 255, 1, 128, 0x7b]);
    for (const [body, contentType] of [
      [bytes, 'application/octet-stream'],
      [Buffer.from('{"a":1}'), 'text/plain'],
      [Buffer.from('{not json'), 'application/json'],
    ] as const) {
      const rs = await deliver({ body, contentType, id: `b-${contentType}` });
      const r = rs.at(-1);
      const e = toEvent(r);
      expect(e.id).toBe(`b-${contentType}`);
      expect(e.datacontenttype).toBe(contentType);
      const json = JSON.parse(r?.body.toString() as string) as Record<string, unknown>;
      expect(json['data']).toBeUndefined();
      expect(Buffer.from(json['data_base64'] as string, 'base64')).toEqual(body);
    }
  });
});

// A message that already is a CloudEvent, in the binary mode of each broker's protocol binding.
const ORIGINAL = {
  specversion: '1.0',
  id: 'order-42',
  source: 'https://shop.example/orders',
  type: 'com.example.order.created',
  time: '2026-01-02T03:04:05.000Z',
  subject: 'orders/42',
  myext: 'yes',
};
const prefixed = (prefix: string, bytes = false) =>
  Object.fromEntries(
    Object.entries(ORIGINAL).map(([k, v]) => [`${prefix}${k}`, bytes ? new TextEncoder().encode(v) : v]),
  );
const bindings: [string, SourceMessage['headers'], string | undefined][] = [
  // Kafka: ce_ headers with byte values; the data's content type in the content-type header.
  ['Kafka ce_ headers', { ...prefixed('ce_', true), 'content-type': 'application/json' }, undefined],
  ['AMQP cloudEvents: properties', prefixed('cloudEvents:'), 'application/json'],
  ['AMQP cloudEvents_ properties', prefixed('cloudEvents_'), 'application/json'],
  ['NATS ce- headers', prefixed('ce-'), 'application/json'],
  ['MQTT 5 user properties', prefixed(''), 'application/json'],
];

describe.each(['binary', 'structured'] as const)('an incoming CloudEvent, cloudevents=%s', (mode) => {
  it.each(bindings)('%s: forwarded as that event, not wrapped', async (_name, headers, contentType) => {
    const { deliver } = await setup({ cloudEvents: mode });
    const [r] = await deliver({
      body: Buffer.from('{"total":9}'),
      id: 'broker-id-1',
      headers: { ...headers, 'x-other': 'kept' },
      ...(contentType === undefined ? {} : { contentType }),
    });
    const e = toEvent(r);
    expect(e).toMatchObject({ ...ORIGINAL, datacontenttype: 'application/json', data: { total: 9 } });
    expect(r?.headers['x-other']).toBe('kept');
    // The binding's own names are not forwarded next to the event's.
    for (const h of Object.keys(r?.headers ?? {}))
      expect(h.startsWith('ce_') || h.startsWith('cloudevents') || h === 'myext').toBe(false);
    if (mode === 'structured') expect(ceHeaders(r)).toEqual([]);
  });

  it("the event's own datacontenttype wins over the configured content_type", async () => {
    const { deliver } = await setup({ cloudEvents: mode, contentType: 'text/plain' });
    const [r] = await deliver({
      body: Buffer.from('{"total":9}'),
      headers: { ...prefixed('ce-'), 'ce-datacontenttype': 'application/json' },
    });
    expect(toEvent(r)).toMatchObject({
      ...ORIGINAL,
      datacontenttype: 'application/json',
      data: { total: 9 },
    });
  });

  it('a structured event (application/cloudevents+json) is sent as it is', async () => {
    const { deliver } = await setup({ cloudEvents: mode });
    const body = JSON.stringify({ ...ORIGINAL, datacontenttype: 'application/json', data: { total: 9 } });
    const [r] = await deliver({
      body: Buffer.from(body),
      contentType: 'application/cloudevents+json',
      id: 'b',
    });
    expect(r?.body.toString()).toBe(body);
    expect(r?.headers['content-type']).toBe('application/cloudevents+json');
    expect(toEvent(r)).toMatchObject({ ...ORIGINAL, data: { total: 9 } });
  });
});

describe('cloudevents=off', () => {
  it('makes no mapping at all: the invoker does nothing per message', () => {
    expect(createCloudEvents({ connectorName: 'c' })).toBeUndefined();
    expect(createCloudEvents({ connectorName: 'c', mode: 'off' })).toBeUndefined();
    expect(createCloudEvents({ connectorName: 'c', mode: 'binary' })?.mode).toBe('binary');
  });

  it('sends no ce- header and the body as it is (the default)', async () => {
    const { deliver } = await setup({});
    const [r] = await deliver({ body: Buffer.from('{"a":1}'), contentType: 'application/json', id: 'x' });
    expect(ceHeaders(r)).toEqual([]);
    expect(r?.body.toString()).toBe('{"a":1}');
    expect(() => HTTP.toEvent({ headers: r?.headers ?? {}, body: r?.body.toString() })).toThrow();
  });
});

describe('cloudevents settings', () => {
  it('configFromEnv reads cloudevents and cloudevents_type; an invalid value is one line naming the setting', () => {
    expect(configFromEnv({ cloudevents: 'Binary', cloudevents_type: 'com.x' })).toMatchObject({
      cloudEvents: 'binary',
      cloudEventsType: 'com.x',
    });
    expect(configFromEnv({}).cloudEvents).toBeUndefined();
    for (const [env, setting] of [
      [{ cloudevents: 'json' }, 'cloudevents'],
      [{ cloudevents_type: 'tÿpe' }, 'cloudevents_type'],
    ] as const) {
      let err: unknown;
      try {
        configFromEnv(env);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).setting).toBe(setting);
      expect((err as ConfigError).message).toContain(setting);
      expect((err as ConfigError).message).not.toContain('\n');
    }
  });

  it('createInvoker refuses an unknown mode', () => {
    expect(() =>
      createInvoker({
        gatewayUrl: 'http://127.0.0.1:1',
        userAgent: 'u',
        connectorName: 'c',
        timeout: 1000,
        cloudEvents: 'json' as CloudEventsMode,
      }),
    ).toThrow(/invalid cloudEvents="json": expected binary, structured or off/);
  });

  it('encodeCloudEventValue percent-encodes what the HTTP binding says (space, ", %, non-ASCII)', () => {
    const v = 'a b"c%dé/x';
    expect(encodeCloudEventValue(v)).toBe('a%20b%22c%25d%C3%A9/x');
    expect(decodeURIComponent(encodeCloudEventValue(v))).toBe(v);
    expect(encodeCloudEventValue('plain/value-1')).toBe('plain/value-1');
  });
});
