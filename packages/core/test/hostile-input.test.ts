import { startGateway } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { createConnector, createController, type DeadLetter, type SourceMessage } from '../src/index.js';
import { memorySource, waitFor } from './helpers.js';

// What a publisher controls — topics, header names and values, function names — must never wedge the connector,
// steer a request elsewhere, or set a header the connector owns.

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

async function setup() {
  const g = await startGateway({
    functions: [
      { name: 'f', annotations: { topic: 'sensors/+,t' } },
      { name: 'a b', annotations: {} },
    ],
  });
  cleanups.push(() => g.close());
  const controller = createController({ gatewayUrl: g.url, topicMatcher: 'mqtt', rebuildInterval: 60_000 });
  const mem = memorySource();
  const letters: DeadLetter[] = [];
  const connector = createConnector({
    controller,
    source: mem.source,
    onFailure: 'dead-letter',
    deadLetter: (l) => {
      letters.push(l);
    },
    retry: { maxRetries: 1, minDelay: 1, maxDelay: 2 },
    drainTimeout: 5000,
  });
  cleanups.push(() => connector.stop());
  await connector.start();
  return { g, controller, mem, letters };
}

/** Messages each built to break a request: the HTTP client refuses them (HTTP_INVALID_REQUEST) as they are. */
function poison(i: number): SourceMessage[] {
  return [
    { topic: 't', body: bytes(`bin-${i}`), headers: { 'X-Bin': bytes('€\u0000') } }, // Kafka header bytes
    { topic: 'sensors/€', body: bytes(`euro-${i}`) }, // MQTT topic above U+00FF → X-Topic
    { topic: 't', body: bytes(`crlf-${i}`), headers: { 'X-Note': 'a\r\nInjected: 1' } }, // MQTT 5 user property
    { topic: 't', body: bytes(`emoji-${i}`), headers: { 'X-SQS-Mood': '😀' } }, // SQS attribute
    {
      topic: 't',
      body: bytes(`reserved-${i}`),
      headers: {
        Authorization: 'Basic YWRtaW46cHc=',
        Expect: '100-continue',
        Upgrade: 'h2c',
        'Keep-Alive': 'timeout=1',
        Connection: 'close',
        'Transfer-Encoding': 'chunked',
        'Content-Length': '1',
        Host: 'evil.example',
        'X-Topic': 'forged',
        'X-Connector': 'forged',
        'bad name': 'x',
        é: 'x',
      },
    },
    { topic: 't', body: bytes(`space-${i}`), functions: ['a b'] }, // a function name with a space
    { topic: 't', body: bytes(`dots-${i}`), functions: ['../system/x'] }, // a path escape attempt
  ];
}

describe('hostile input from a publisher', () => {
  it('encodes what HTTP cannot carry, refuses reserved headers, keeps function names inside /function/', async () => {
    const { g, mem, letters } = await setup();
    mem.push(...poison(0));
    await waitFor(() => mem.acked.length === 7);
    const by = (body: string) => g.invocations().find((r) => r.body.toString() === body);
    expect(by('bin-0')?.headers['x-bin']).toBe('%E2%82%AC%00');
    expect(decodeURIComponent(by('bin-0')?.headers['x-bin'] ?? '')).toBe('€\u0000');
    expect(by('euro-0')?.headers['x-topic']).toBe('sensors/%E2%82%AC');
    expect(by('crlf-0')?.headers['x-note']).toBe('a%0D%0AInjected:%201');
    expect(by('crlf-0')?.headers['injected']).toBeUndefined();
    expect(decodeURIComponent(by('emoji-0')?.headers['x-sqs-mood'] ?? '')).toBe('😀');
    const reserved = by('reserved-0');
    expect(reserved?.headers['authorization']).toBeUndefined();
    expect(reserved?.headers['expect']).toBeUndefined();
    expect(reserved?.headers['upgrade']).toBeUndefined();
    expect(reserved?.headers['host']).not.toBe('evil.example');
    expect(reserved?.headers['x-topic']).toBe('t');
    expect(reserved?.headers['x-connector']).toBe('connector');
    expect(by('space-0')?.path).toBe('/function/a%20b.openfaas-fn');
    expect(by('space-0')?.function).toBe('a b.openfaas-fn');
    // `../system/x` is the address name '' in namespace './system/x': no function can have it, so no request is
    // made (it was `/function/.%2E%2Fsystem%2Fx`, whose first dot pair a proxy may read as `..`) and nothing reached
    // /system; the message is dead-lettered as an invalid request.
    expect(by('dots-0')).toBeUndefined();
    expect(g.requests.filter((r) => r.path.includes('system%2F'))).toEqual([]);
    expect(g.requests.filter((r) => r.path.startsWith('/system') && r.method !== 'GET')).toEqual([]);
    expect(letters.map((l) => Buffer.from(l.message.body).toString())).toEqual(['dots-0']);
    expect(letters[0]?.result.error?.code).toBe('ERR_INVALID_REQUEST');
    // Each message settled once: six delivered, one dead-lettered (never retried: no retry can fix it).
    expect(mem.outcomes.map((o) => o.status).sort()).toEqual([
      'dead-lettered',
      'delivered',
      'delivered',
      'delivered',
      'delivered',
      'delivered',
      'delivered',
    ]);
  });

  it('after 500 such messages a normal message is still delivered within a second and the map still rebuilds', async () => {
    const { g, controller, mem } = await setup();
    const all: SourceMessage[] = [];
    for (let i = 0; all.length < 500; i++) all.push(...poison(i));
    mem.push(...all.slice(0, 500));
    await waitFor(() => mem.acked.length === 500, { timeout: 30_000 });
    // Each delivered or dead-lettered exactly once: no loop, no redelivery.
    expect(mem.notAcked).toHaveLength(0);
    mem.push({ topic: 't', body: bytes('normal') });
    await waitFor(() => g.invocations('f.openfaas-fn').some((r) => r.body.toString() === 'normal'), {
      timeout: 1000,
    });
    g.addFunction({ name: 'late', annotations: { topic: 'late' } });
    await controller.refresh();
    expect(controller.topics()).toContain('late');
  });
});
