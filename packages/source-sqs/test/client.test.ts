import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, startGateway, startSqs, waitFor } from './helpers.js';

let sqs: Awaited<ReturnType<typeof startSqs>>;
const cleanups: (() => Promise<unknown>)[] = [];
beforeAll(async () => {
  sqs = await startSqs();
});
afterAll(async () => sqs.close());
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("the source's own SDK client", () => {
  it("still hands the SDK's log lines to a logger given in clientConfig (its logger middleware stays then)", async () => {
    const url = await sqs.createQueue('client-logger');
    await sqs.send(url, ['a', 'b', 'c']);
    const g = await startGateway({ functions: [{ name: 'fn', annotations: { topic: 'client-logger' } }] });
    cleanups.push(() => g.close());
    const commands: string[] = [];
    const logger = {
      debug: () => {},
      info: (entry: { commandName?: string }) => void commands.push(entry.commandName ?? '?'),
      warn: () => {},
      error: () => {},
    };
    const { connector, source } = await connect(g, {
      queues: ['client-logger'],
      waitTime: 1,
      clientConfig: { ...sqs.clientConfig, logger },
    });
    cleanups.push(() => connector.stop());
    await waitFor(() => source.stats().deleted === 3, 'three messages delivered and deleted');
    expect(g.invocations('fn')).toHaveLength(3);
    expect(commands).toContain('ReceiveMessageCommand');
    expect(commands).toContain('DeleteMessageBatchCommand');
  });
});
