import { createServer } from 'node:net';
import type { SQSClientConfig } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
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
