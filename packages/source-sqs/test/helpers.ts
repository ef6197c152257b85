import { createServer } from 'node:net';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import {
  type Connector,
  type ConnectorOptions,
  type Controller,
  createConnector,
  createController,
} from '@connector/core';
import {
  type Cleanups,
  cleanups,
  lateBound,
  startGateway,
  type TestGateway,
  waitFor as wait,
} from '@connector/testing';
import { startFauxqs } from 'fauxqs';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { type SqsSource, type SqsSourceOptions, sqsSource } from '../src/index.js';
import type { Queue, Received } from '../src/queue.js';

export const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

/** fauxqs in-process, an SDK client for it, and cleanup. */
export async function startSqs() {
  const server = await startFauxqs({ port: 0, logger: false });
  const clientConfig = { endpoint: server.address, region: 'us-east-1', credentials };
  const client = new SQSClient(clientConfig);
  const clients: SQSClient[] = [];
  return {
    server,
    client,
    clientConfig,
    async createQueue(name: string, attributes: Record<string, string> = {}) {
      const r = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
      return r.QueueUrl as string;
    },
    async send(url: string, bodies: string[], extra: (i: number) => Record<string, unknown> = () => ({})) {
      for (let i = 0; i < bodies.length; i += 10) {
        await client.send(
          new SendMessageBatchCommand({
            QueueUrl: url,
            Entries: bodies
              .slice(i, i + 10)
              .map((b, j) => ({ Id: String(j), MessageBody: b, ...extra(i + j) })),
          }),
        );
      }
    },
    /** A new queue `name` (visibility timeout `visibility` s) holding `n` messages (`m-<i>`), all received. */
    async received(
      name: string,
      n: number,
      visibility: number,
    ): Promise<{ queue: Queue; received: Received[] }> {
      const url = await this.createQueue(name, { VisibilityTimeout: String(visibility) });
      await this.send(
        url,
        Array.from({ length: n }, (_, i) => `m-${i}`),
      );
      const queue: Queue = { url, name, fifo: false, visibility };
      const received: Received[] = [];
      while (received.length < n) {
        const r = await client.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }));
        for (const m of r.Messages ?? [])
          received.push({ queue, receipt: m.ReceiptHandle as string, heartbeat: undefined });
      }
      return { queue, received };
    },
    async counts(url: string) {
      const r = await client.send(
        new GetQueueAttributesCommand({
          QueueUrl: url,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      return {
        visible: Number(r.Attributes?.['ApproximateNumberOfMessages']),
        invisible: Number(r.Attributes?.['ApproximateNumberOfMessagesNotVisible']),
      };
    },
    /** A client of its own that counts its calls by command (an SDK middleware) and records their errors. */
    countingClient() {
      const c = new SQSClient(clientConfig);
      const calls: Record<string, number> = {};
      const errors: { command: string; name: string }[] = [];
      c.middlewareStack.add(
        (next, context) => async (args) => {
          const command = context.commandName ?? '?';
          calls[command] = (calls[command] ?? 0) + 1;
          try {
            return await next(args);
          } catch (err) {
            errors.push({ command, name: (err as Error).name });
            throw err;
          }
        },
        { step: 'initialize', name: 'countCalls' },
      );
      clients.push(c);
      return { client: c, calls, errors, count: (command: string) => calls[`${command}Command`] ?? 0 };
    },
    async close() {
      for (const c of clients) c.destroy();
      client.destroy();
      await server.stop();
    },
  };
}

/** `waitFor` of @connector/testing with a 20 s default, failing with `what` (and the last value seen). */
export const waitFor = <T>(cond: () => T | Promise<T>, what: string | (() => string), timeout = 20_000) =>
  wait(cond, { message: what, timeout });

/** Start a connector with an SQS source against a gateway. */
export async function connect(
  gateway: TestGateway,
  source: SqsSourceOptions,
  opts: Partial<ConnectorOptions> = {},
): Promise<{ connector: Connector; source: SqsSource; controller: Controller }> {
  const controller = createController({ gatewayUrl: gateway.url, rebuildInterval: 60_000 });
  const s = sqsSource(source);
  const connector = createConnector({
    controller,
    source: s,
    drainTimeout: 5000,
    ...opts,
    retry: { minDelay: 1, maxDelay: 5, ...opts.retry },
  });
  await connector.start();
  return { connector, source: s, controller };
}

/** A 127.0.0.1 port nothing listens on (listened on, then closed): connections to it are refused. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

export { startGateway };

type TestSqs = Awaited<ReturnType<typeof startSqs>>;

/**
 * The test file's fauxqs `sqs` (started in `beforeAll`, closed in `afterAll`), a `cleanup` stack run after each test,
 * and `consume` (a connector on `sqs`, stopped after the test).
 */
export function sqsSuite() {
  let started: TestSqs | undefined;
  const cleanup: Cleanups = cleanups();
  beforeAll(async () => {
    started = await startSqs();
  });
  afterAll(async () => started?.close());
  afterEach(() => cleanup.run());
  const sqs = lateBound(() => started, 'fauxqs (started in beforeAll)');
  return {
    sqs,
    cleanup,
    /** `connect` with `sqs`'s client config and 1 s long polls unless `source` says otherwise; stopped after the test. */
    async consume(gateway: TestGateway, source: SqsSourceOptions, opts: Partial<ConnectorOptions> = {}) {
      const c = await connect(gateway, { waitTime: 1, clientConfig: sqs.clientConfig, ...source }, opts);
      cleanup.add(() => c.connector.stop());
      return c;
    },
  };
}
