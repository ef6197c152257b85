import { createServer } from 'node:net';
import type { SQSClientConfig } from '@aws-sdk/client-sqs';
import { describe, expect, it, vi } from 'vitest';
import { UndiciRequestHandler } from '../src/http.js';
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

  it('uses a requestHandler given in clientConfig instead of its own undici one', async () => {
    const url = await sqs.createQueue('client-handler');
    await sqs.send(url, ['a', 'b']);
    const g = await startGateway({ functions: [{ name: 'fn', annotations: { topic: 'client-handler' } }] });
    cleanup.add(() => g.close());
    const inner = new UndiciRequestHandler();
    cleanup.add(async () => inner.destroy());
    const seen: string[] = [];
    const handler = {
      metadata: inner.metadata,
      handle: (req: Parameters<UndiciRequestHandler['handle']>[0], o?: { abortSignal?: AbortSignal }) => {
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
  /** For each request the source's undici handler sent: its X-Amz-Target, and whether the SDK's stack built it. */
  const requests = () => {
    const sent: [string, boolean][] = [];
    const original = UndiciRequestHandler.prototype.handle;
    const spy = vi.spyOn(UndiciRequestHandler.prototype, 'handle').mockImplementation(function (
      this: UndiciRequestHandler,
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

describe('UndiciRequestHandler', () => {
  it("reports a connection the server drops mid-request as ECONNRESET (the code the SDK's retry knows)", async () => {
    const server = createServer((socket) => socket.once('data', () => socket.destroy()));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.add(() => new Promise((r) => server.close(r)));
    const { port } = server.address() as { port: number };
    const handler = new UndiciRequestHandler();
    cleanup.add(async () => handler.destroy());
    const sent = handler.handle({
      protocol: 'http:',
      hostname: '127.0.0.1',
      port,
      method: 'POST',
      path: '/',
      headers: { host: `127.0.0.1:${port}`, 'content-type': 'application/x-amz-json-1.0' },
      body: '{}',
    });
    await expect(sent).rejects.toMatchObject({ code: 'ECONNRESET' });
  });
});
