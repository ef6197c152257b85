import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startGateway, waitFor } from '@connector/testing';
import { context, propagation, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { cli } from '../src/index.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('OTLP trace export (the CLI every app runs)', () => {
  it('with OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set, the message spans are POSTed there (flushed by stop)', async () => {
    const g = await startGateway({ functions: [{ name: 'beat', annotations: { topic: 'heartbeat' } }] });
    cleanups.push(() => g.close());
    const posts: { path: string | undefined; body: string }[] = [];
    const collector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        posts.push({ path: req.url, body: Buffer.concat(chunks).toString() });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => collector.close(() => r())));
    const { port } = collector.address() as AddressInfo;

    const saved = { ...process.env };
    cleanups.push(() => {
      process.env = saved;
      trace.disable();
      propagation.disable();
      context.disable();
    });
    Object.assign(process.env, {
      gateway_url: g.url,
      http_port: '0',
      log_level: 'error',
      mode: 'interval',
      interval: '20ms',
      topic: 'heartbeat',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${port}/v1/traces`,
    });
    const codes: number[] = [];
    const connector = await cli([], {
      stderr: (t) => {
        throw new Error(`unexpected stderr: ${t}`);
      },
      exit: (code) => void codes.push(code),
    });
    expect(codes).toEqual([]);
    const calls = await g.waitForInvocations(2, { fn: 'beat' });
    // The function is called under the attempt's span.
    expect(calls[0]?.headers['traceparent']).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    await connector?.stop();
    await waitFor(() => posts.length > 0);
    expect(posts[0]?.path).toBe('/v1/traces');
    const body = posts.map((p) => p.body).join('\n');
    expect(body).toContain('process timer');
    expect(body).toContain('timer-connector'); // service.name
  });
});
