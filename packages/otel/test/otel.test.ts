import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, tracingEnabled } from '@connector/core';
import { waitFor } from '@connector/testing';
import { context, propagation, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { otlpTracesUrl, startTracing } from '../src/index.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('otlpTracesUrl (when the env turns tracing on)', () => {
  it('is off without an endpoint, with OTEL_TRACES_EXPORTER=none, or with OTEL_SDK_DISABLED=true', () => {
    expect(otlpTracesUrl({})).toBeUndefined();
    expect(otlpTracesUrl({ OTEL_TRACES_EXPORTER: 'otlp' })).toBeUndefined();
    expect(
      otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }),
    ).toBeUndefined();
    expect(
      otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }),
    ).toBeUndefined();
  });

  it('adds /v1/traces to the base endpoint; takes the traces endpoint as it is, before the base one', () => {
    expect(otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' })).toBe('http://c:4318/v1/traces');
    expect(
      otlpTracesUrl({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://t:443/custom',
        OTEL_TRACES_EXPORTER: 'otlp',
      }),
    ).toBe('https://t:443/custom');
  });

  it('refuses another exporter or a non-http endpoint in one line naming the variable', () => {
    const err = (env: Record<string, string>) => {
      try {
        otlpTracesUrl(env);
      } catch (e) {
        return e;
      }
      throw new Error('expected a ConfigError');
    };
    const zipkin = err({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'zipkin' });
    expect(zipkin).toBeInstanceOf(ConfigError);
    expect((zipkin as Error).message).toMatch(/^invalid OTEL_TRACES_EXPORTER="zipkin"/);
    const grpc = err({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'grpc://user:s3cret@c:4317/v1/traces' });
    expect((grpc as Error).message).toBe(
      'invalid OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="grpc://c:4317/v1/traces" (credentials removed): expected an http or https URL like http://collector:4318',
    );
    const garbled = err({ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url s3cret' });
    expect(garbled).toBeInstanceOf(ConfigError);
    expect((garbled as Error).message).toMatch(/^invalid OTEL_EXPORTER_OTLP_ENDPOINT \(value not shown\)/);
    expect((garbled as Error).message).not.toContain('s3cret');
  });
});

describe('startTracing', () => {
  it('registers nothing when the env does not ask for it', () => {
    expect(startTracing({ serviceName: 'x', env: {} })).toBeUndefined();
    expect(tracingEnabled()).toBe(false);
  });

  it('registers an SDK that POSTs spans to the OTLP endpoint, flushed by shutdown()', async () => {
    const posts: { url: string | undefined; headers: IncomingHttpHeaders; body: string }[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        posts.push({ url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const { port } = server.address() as AddressInfo;
    const tracing = startTracing({
      serviceName: 'test-connector',
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` },
    });
    cleanups.push(() => {
      trace.disable();
      propagation.disable();
      context.disable();
    });
    expect(tracing?.url).toBe(`http://127.0.0.1:${port}/v1/traces`);
    expect(tracingEnabled()).toBe(true);
    trace.getTracer('t').startSpan('hello').end();
    await tracing?.shutdown();
    await waitFor(() => posts.length > 0);
    expect(posts[0]?.url).toBe('/v1/traces');
    expect(posts[0]?.headers['content-type']).toMatch(/json|protobuf/);
    expect(posts[0]?.body).toContain('hello');
    expect(posts[0]?.body).toContain('test-connector');
  });
});
