import { memoryLogger, waitFor } from '@connector/testing';
import { headers } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connector, gateway, nats, okBodies } from './helpers/connector.js';
import { type NatsServer, startNatsServer } from './helpers/nats.js';

// Core NATS (mode=core): the openfaas/nats-connector behaviour, at-most-once, plus request/reply with an allow-list.
let server: NatsServer;
beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server.stop();
});

describe('core NATS mode', () => {
  it("subscribes to the functions' topics (wildcards, overlaps delivered once) and follows them", async () => {
    const g = await gateway({
      functions: [
        { name: 'a', annotations: { topic: 'core.a.*' } },
        { name: 'all', annotations: { topic: 'core.a.>' } },
      ],
    });
    const { source } = await connector(
      g,
      { servers: server.url, mode: 'core' },
      {},
      { rebuildInterval: 200 },
    );
    expect(source.subscriptions()).toEqual(['core.a.>']); // core.a.* is covered: one subscription, one copy
    const nc = await nats(server.url);
    const h = headers();
    h.set('traceparent', '00-1-2-01');
    nc.publish('core.a.x', 'one', { headers: h });
    nc.publish('core.a.x.y', 'two');
    await waitFor(() => g.invocations().length === 3);
    expect([...okBodies(g, 'a')]).toEqual(['one']);
    expect([...okBodies(g, 'all')].sort()).toEqual(['one', 'two']);
    const req = g.invocations('a')[0];
    expect(req?.headers['x-nats-subject']).toBe('core.a.x');
    expect(req?.headers['traceparent']).toBe('00-1-2-01');
    expect(req?.headers['x-nats-stream']).toBeUndefined();
    g.addFunction({ name: 'b', annotations: { topic: 'core.b' } });
    // The next rebuild (every 200 ms) brings the new topic; a loaded CI machine gets more time than 10 s.
    await waitFor(() => source.subscriptions().includes('core.b'), { timeout: 30_000 });
    // At-most-once: a message published before the server has the new subscription is dropped, so publish until
    // one arrives (the source's SUB and our PUB travel on different connections).
    await waitFor(() => {
      nc.publish('core.b', 'three');
      return okBodies(g, 'b').has('three');
    });
  });

  it('delivers partially overlapping subscriptions once', async () => {
    const g = await gateway({
      functions: [
        { name: 'x', annotations: { topic: 'ov.*.c' } },
        { name: 'y', annotations: { topic: 'ov.b.*' } },
      ],
    });
    const { source } = await connector(g, { servers: server.url, mode: 'core' });
    expect(source.subscriptions()).toEqual(['ov.*.c', 'ov.b.*']);
    const nc = await nats(server.url);
    nc.publish('ov.b.c', 'both');
    nc.publish('ov.z.c', 'x-only');
    await waitFor(() => okBodies(g, 'x').size === 2 && okBodies(g, 'y').size === 1);
    await nc.flush();
    expect(g.invocations('x')).toHaveLength(2);
    expect(g.invocations('y')).toHaveLength(1);
  });

  it('replies to a request when the reply subject is allowed, and never otherwise', async () => {
    const g = await gateway({
      functions: [
        {
          name: 'echo',
          annotations: { topic: 'rq.echo' },
          handler: (r) => ({
            status: 201,
            body: `hi ${r.body.toString()}`,
            headers: { 'content-type': 'text/x-hi' },
          }),
        },
      ],
    });
    const logger = memoryLogger();
    await connector(
      g,
      { servers: server.url, mode: 'core', subjects: ['rq.*'], reply: true, replySubjects: ['_INBOX.>'] },
      { logger },
    );
    const nc = await nats(server.url);
    const res = await nc.request('rq.echo', 'bob', { timeout: 5000 });
    expect(res.string()).toBe('hi bob');
    expect(res.headers?.get('X-Function')).toBe('echo.openfaas-fn');
    expect(res.headers?.get('X-Function-Status')).toBe('201');
    expect(res.headers?.get('Content-Type')).toBe('text/x-hi');
    // a reply subject outside the allow-list: invoked, but nothing is published there
    const published: string[] = [];
    nc.subscribe('evil.>', { callback: (_e, m) => void published.push(m.string()) });
    nc.publish('rq.echo', 'mallory', { reply: 'evil.target' });
    await waitFor(() =>
      logger.lines.some((l) => l.msg === 'reply subject not in reply_subjects: no reply published'),
    );
    await nc.flush();
    expect(published).toEqual([]);
    expect(g.invocations('echo').map((r) => r.body.toString())).toEqual(['bob', 'mallory']);
  });

  it('splits messages between replicas of one queue group', async () => {
    const g = await gateway({ functions: [{ name: 'q', annotations: { topic: 'qg.x' } }] });
    const opts = { servers: server.url, mode: 'core' as const, subjects: ['qg.x'], queue: 'workers' };
    await connector(g, opts);
    await connector(g, opts);
    const nc = await nats(server.url);
    for (let i = 0; i < 40; i++) nc.publish('qg.x', `m${i}`);
    await waitFor(() => okBodies(g, 'q').size === 40);
    expect(g.invocations('q')).toHaveLength(40);
  });
});
