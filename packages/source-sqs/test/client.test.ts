import { createServer, type Socket } from 'node:net';
import type { SQSClientConfig } from '@aws-sdk/client-sqs';
import { describe, expect, it, vi } from 'vitest';
import { SqsHttpHandler } from '../src/http.js';
import { sqsSuite, startGateway, waitFor } from './helpers.js';

const { sqs, cleanup, consume } = sqsSuite();

describe("the source's own SDK client", () => {
  it("still hands the SDK's log lines to a logger given in clientConfig (its logger middleware stays then)", async () => {
    const url = await sqs.createQueue('client-logger');
    await sqs.send(url, ['a', 'b', 'c']);
    const g = await startGateway({ functions: [{ name: 'fn', annotations: { topic: 'client-logger' } }] });
    cleanup.add(() => g.close());
    const commands: string[] = [];
    const logger = {
      debug: () => {},
      info: (entry: { commandName?: string }) => void commands.push(entry.commandName ?? '?'),
      warn: () => {},
      error: () => {},
    };
    const { source } = await consume(g, {
      queues: ['client-logger'],
      clientConfig: { ...sqs.clientConfig, logger },
    });
    await waitFor(() => source.stats().deleted === 3, 'three messages delivered and deleted');
    expect(g.invocations('fn')).toHaveLength(3);
    expect(commands).toContain('ReceiveMessageCommand');
    expect(commands).toContain('DeleteMessageBatchCommand');
  });

  it("uses a requestHandler given in clientConfig instead of its own (on core's HTTP client)", async () => {
    const url = await sqs.createQueue('client-handler');
    await sqs.send(url, ['a', 'b']);
    const g = await startGateway({ functions: [{ name: 'fn', annotations: { topic: 'client-handler' } }] });
    cleanup.add(() => g.close());
    const inner = new SqsHttpHandler();
    cleanup.add(async () => inner.destroy());
    const seen: string[] = [];
    const handler = {
      metadata: inner.metadata,
      handle: (req: Parameters<SqsHttpHandler['handle']>[0], o?: { abortSignal?: AbortSignal }) => {
        seen.push(req.headers['x-amz-target'] ?? '?');
        return inner.handle(req, o);
      },
      updateHttpClientConfig: () => {},
      httpHandlerConfigs: () => ({}),
      destroy: () => {},
    };
    const { source } = await consume(g, {
      queues: ['client-handler'],
      clientConfig: {
        ...sqs.clientConfig,
        requestHandler: handler as unknown as NonNullable<SQSClientConfig['requestHandler']>,
      },
    });
    await waitFor(() => source.stats().deleted === 2, 'two messages delivered and deleted');
    expect(seen).toContain('AmazonSQS.ReceiveMessage');
    expect(seen).toContain('AmazonSQS.DeleteMessageBatch');
  });
});

describe('the fast path (wire.ts)', () => {
  /** For each request the source's own handler sent: its X-Amz-Target, and whether the SDK's stack built it. */
  const requests = () => {
    const sent: [string, boolean][] = [];
    const original = SqsHttpHandler.prototype.handle;
    const spy = vi.spyOn(SqsHttpHandler.prototype, 'handle').mockImplementation(function (
      this: SqsHttpHandler,
      req,
      o,
    ) {
      sent.push([req.headers['x-amz-target'] ?? '?', req.headers['amz-sdk-invocation-id'] !== undefined]);
      return original.call(this, req, o);
    });
    cleanup.add(async () => spy.mockRestore());
    return sent;
  };

  for (const fastPath of [undefined, false])
    it(`fastPath ${fastPath ?? 'unset'}: ReceiveMessage and DeleteMessageBatch ${fastPath === false ? 'through the SDK' : "by the source's own client"}, GetQueueUrl through the SDK`, async () => {
      const name = `fast-${String(fastPath)}`;
      const url = await sqs.createQueue(name);
      await sqs.send(url, ['a', 'b']);
      const g = await startGateway({ functions: [{ name: 'fn', annotations: { topic: name } }] });
      cleanup.add(() => g.close());
      const sent = requests();
      const { source } = await consume(g, {
        queues: [name],
        clientConfig: sqs.clientConfig,
        ...(fastPath === false ? { fastPath } : {}),
      });
      await waitFor(() => source.stats().deleted === 2, 'two messages delivered and deleted');
      const viaSdk = (target: string) => [
        ...new Set(sent.filter(([t]) => t === target).map(([, sdk]) => sdk)),
      ];
      expect(viaSdk('AmazonSQS.GetQueueUrl')).toEqual([true]);
      expect(viaSdk('AmazonSQS.ReceiveMessage')).toEqual([fastPath === false]);
      expect(viaSdk('AmazonSQS.DeleteMessageBatch')).toEqual([fastPath === false]);
      expect(g.invocations('fn')).toHaveLength(2);
    });
});

describe('SqsHttpHandler', () => {
  /** A raw TCP server: each request's bytes (head and body as they came), answered by `respond`. */
  async function raw(respond: (socket: Socket, request: string) => void) {
    const requests: string[] = [];
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('data', (d) => {
        const request = d.toString('latin1');
        requests.push(request);
        respond(socket, request);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.add(
      () =>
        new Promise((r) => {
          server.close(r);
          for (const s of sockets) s.destroy();
        }),
    );
    return { port: (server.address() as { port: number }).port, requests };
  }
  const request = (port: number, headers: Record<string, string> = {}) => ({
    protocol: 'http:',
    hostname: '127.0.0.1',
    port,
    method: 'POST',
    path: '/',
    headers: {
      host: `127.0.0.1:${port}`,
      'Content-Type': 'application/x-amz-json-1.0',
      'content-length': '2',
      ...headers,
    },
    body: '{}',
  });
  const handler = (timeout?: number) => {
    const h = new SqsHttpHandler(timeout);
    cleanup.add(async () => h.destroy());
    return h;
  };

  it('sends one Host and one Content-Length (its own), the other headers as given, and returns the whole answer', async () => {
    const s = await raw((socket) =>
      socket.write(
        'HTTP/1.1 200 OK\r\nx-amzn-RequestId: r1\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{"a\r\n4\r\n":1}\r\n0\r\n\r\n',
      ),
    );
    const { response } = await handler().handle(request(s.port));
    expect(response.statusCode).toBe(200);
    expect(response.headers['x-amzn-requestid']).toBe('r1');
    expect(Buffer.from(response.body).toString()).toBe('{"a":1}');
    expect(s.requests[0]).toBe(
      `POST / HTTP/1.1\r\nhost: 127.0.0.1:${s.port}\r\nContent-Type: application/x-amz-json-1.0\r\ncontent-length: 2\r\n\r\n{}`,
    );
  });

  it("sends the signed Host as it is when it is not the origin's spelling", async () => {
    const s = await raw((socket) => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'));
    await handler().handle(request(s.port, { host: 'sqs.example:4566' }));
    expect(s.requests[0]).toContain('\r\nhost: sqs.example:4566\r\n');
    expect(s.requests[0]?.match(/host:/gi)).toHaveLength(1);
  });

  it("reports a connection the server drops mid-request as ECONNRESET (the code the SDK's retry knows)", async () => {
    const s = await raw((socket) => socket.destroy());
    await expect(handler().handle(request(s.port))).rejects.toMatchObject({ code: 'ECONNRESET' });
  });

  it('gives up on a server that never answers after its timeout, as ETIMEDOUT, and serves the next call', async () => {
    let calls = 0;
    const s = await raw((socket) => {
      if (++calls > 1) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}');
    });
    const h = handler(200);
    await expect(h.handle(request(s.port))).rejects.toMatchObject({
      name: 'TimeoutError',
      code: 'ETIMEDOUT',
      message: 'no answer from SQS within 200 ms',
    });
    expect((await h.handle(request(s.port))).response.statusCode).toBe(200);
  });

  it('rejects with an AbortError when its signal aborts, sending nothing when it was aborted before', async () => {
    const s = await raw(() => {}); // never answers
    const h = handler();
    const before = new AbortController();
    before.abort();
    await expect(h.handle(request(s.port), { abortSignal: before.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(s.requests).toEqual([]);
    const during = new AbortController();
    const pending = h.handle(request(s.port), { abortSignal: during.signal });
    await waitFor(() => s.requests.length === 1, 'the request reached the server');
    during.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });
});
