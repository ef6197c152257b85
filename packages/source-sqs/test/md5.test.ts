import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { memoryLogger } from '@connector/testing';
import { describe, expect, it } from 'vitest';
import { sqsSuite, startGateway, waitFor } from './helpers.js';

const { sqs, cleanup, consume } = sqsSuite();

/**
 * A proxy in front of fauxqs that changes the body of every received message starting with `bad` (and keeps its
 * MD5OfBody): a message damaged on the way; and drops the MD5OfBody of those starting with `no-md5` (an emulator
 * that sends none). Returns the proxy's endpoint.
 */
async function damagingProxy(): Promise<string> {
  const target = new URL(sqs.server.address);
  const proxy = createServer((req, res) => {
    const body: Buffer[] = [];
    req.on('data', (c: Buffer) => body.push(c));
    req.on('end', () => {
      const out = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          const chunks: Buffer[] = [];
          answer.on('data', (c: Buffer) => chunks.push(c));
          answer.on('end', () => {
            let text = Buffer.concat(chunks).toString();
            if (text.includes('"Messages"')) {
              const doc = JSON.parse(text) as { Messages: { Body: string; MD5OfBody?: string }[] };
              for (const m of doc.Messages) {
                if (m.Body.startsWith('bad')) m.Body = `${m.Body} (damaged)`;
                if (m.Body.startsWith('no-md5')) delete m.MD5OfBody;
              }
              text = JSON.stringify(doc);
            }
            const headers = { ...answer.headers, 'content-length': String(Buffer.byteLength(text)) };
            res.writeHead(answer.statusCode ?? 500, headers).end(text);
          });
        },
      );
      out.end(Buffer.concat(body));
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  cleanup.add(() => new Promise<void>((r) => proxy.close(() => r())));
  return `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}

describe('a body that does not match its MD5', () => {
  for (const fastPath of [true, false]) {
    it(`is neither delivered nor deleted, and its batch-mates are delivered (fastPath ${fastPath})`, async () => {
      const name = `md5-${fastPath}`;
      const url = await sqs.createQueue(name, { VisibilityTimeout: '30' });
      const g = await startGateway({ functions: [{ name: 'fn', annotations: { topic: name } }] });
      cleanup.add(() => g.close());
      await sqs.send(url, ['good-0', 'bad-1', 'good-2', 'no-md5-3']);
      const logger = memoryLogger();
      const { source } = await consume(
        g,
        { queues: [name], fastPath, clientConfig: { ...sqs.clientConfig, endpoint: await damagingProxy() } },
        { logger },
      );
      await waitFor(
        () => source.stats().deleted === 3,
        'the three others deleted (no MD5: nothing to check)',
      );
      expect(
        g
          .invocations('fn')
          .map((r) => r.body.toString())
          .sort(),
      ).toEqual(['good-0', 'good-2', 'no-md5-3']);
      expect(source.stats().corrupted).toBe(1);
      expect(await sqs.counts(url)).toEqual({ visible: 0, invisible: 1 }); // left for SQS to redeliver
      const line = logger.lines.find((l) => /does not match its MD5/.test(l.msg ?? ''));
      expect(line?.level).toBe('error');
      expect(line?.obj).toMatchObject({ queue: name, messageId: expect.any(String) });
    });
  }

  it('in a FIFO group holds back the rest of its group, as a failed delivery does; other groups go on', async () => {
    const name = 'md5.fifo';
    const url = await sqs.createQueue(name, {
      FifoQueue: 'true',
      ContentBasedDeduplication: 'true',
      VisibilityTimeout: '30',
    });
    const g = await startGateway({ functions: [{ name: 'fn', annotations: { topic: name } }] });
    cleanup.add(() => g.close());
    await sqs.send(url, ['bad-g0', 'h-0', 'g-1', 'h-1'], (i) => ({
      MessageGroupId: i % 2 === 0 ? 'g' : 'h',
    }));
    const { source } = await consume(
      g,
      { queues: [name], clientConfig: { ...sqs.clientConfig, endpoint: await damagingProxy() } },
      { logger: memoryLogger() },
    );
    await waitFor(() => source.stats().deleted === 2, 'the h group delivered and deleted');
    // A few more polls: g-1 (held back with bad-g0, or never received while bad-g0 is in flight) stays undelivered.
    const polls = source.stats().receiveCalls;
    await waitFor(() => source.stats().receiveCalls >= polls + 3, 'three more polls');
    expect(g.invocations('fn').map((r) => r.body.toString())).toEqual(['h-0', 'h-1']);
    const left = await sqs.counts(url);
    expect(left.visible + left.invisible).toBe(2); // bad-g0 and g-1, both still at SQS
    expect(source.stats().corrupted).toBe(1);
  });

  it("is delivered as it came with the client config's md5: false (no check)", async () => {
    const name = 'md5-off';
    const url = await sqs.createQueue(name);
    const g = await startGateway({ functions: [{ name: 'fn', annotations: { topic: name } }] });
    cleanup.add(() => g.close());
    await sqs.send(url, ['bad-0']);
    const endpoint = await damagingProxy();
    const { source } = await consume(g, {
      queues: [name],
      clientConfig: { ...sqs.clientConfig, endpoint, md5: false },
    });
    await waitFor(() => source.stats().deleted === 1, 'the message deleted');
    expect(g.invocations('fn').map((r) => r.body.toString())).toEqual(['bad-0 (damaged)']);
    expect(source.stats().corrupted).toBe(0);
  });
});
