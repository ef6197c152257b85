import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DeleteMessageBatchCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SQSClient,
  type SQSClientConfig,
} from '@aws-sdk/client-sqs';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sqsError } from '../src/errors.js';
import { SqsHttpHandler, sdkHandler } from '../src/http.js';
import { fastCalls } from '../src/wire.js';

// An SQS double that checks every request's SigV4 signature with the AWS SDK's signer (fauxqs checks none) and
// answers what each test asks for: what the source's own JSON-protocol calls put on the wire, and how answers and
// error answers come back.

const credentials = { accessKeyId: 'AKIDWIRE', secretAccessKey: 'wire/secret+key' };
const sha256 = new SQSClient({ region: 'us-east-1' }).config.sha256;

interface Seen {
  target: string;
  host: string;
  body: Record<string, unknown>;
  headers: IncomingMessage['headers'];
  signatureOk: boolean;
}

let server: Server;
let port = 0;
const seen: Seen[] = [];
let answer: (s: Seen) => { status: number; body: string; headers?: Record<string, string> } = () => ({
  status: 200,
  body: '{}',
});

/** 20261202T052618Z → Date */
const amzDate = (v: string) =>
  new Date(
    `${v.slice(0, 4)}-${v.slice(4, 6)}-${v.slice(6, 8)}T${v.slice(9, 11)}:${v.slice(11, 13)}:${v.slice(13, 15)}Z`,
  );

async function signatureOk(req: IncomingMessage, body: string): Promise<boolean> {
  const auth = String(req.headers['authorization'] ?? '');
  const names = /SignedHeaders=([^,]+)/.exec(auth)?.[1]?.split(';') ?? [];
  const region = /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(auth)?.[1] ?? '';
  const headers: Record<string, string> = {};
  for (const n of names) headers[n] = String(req.headers[n] ?? '');
  const token = req.headers['x-amz-security-token'];
  const signer = new SignatureV4({
    credentials: { ...credentials, ...(typeof token === 'string' ? { sessionToken: token } : {}) },
    region,
    service: 'sqs',
    sha256,
  });
  const [hostname, p] = String(req.headers['host']).split(':');
  const expected = await signer.sign(
    {
      method: req.method as string,
      protocol: 'http:',
      hostname: hostname as string,
      ...(p !== undefined ? { port: Number(p) } : {}),
      path: req.url as string,
      query: {},
      headers,
      body,
    },
    { signingDate: amzDate(String(req.headers['x-amz-date'])) },
  );
  return expected.headers['authorization'] === auth;
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', async () => {
      const s: Seen = {
        target: String(req.headers['x-amz-target'] ?? ''),
        host: String(req.headers['host']),
        body: body === '' ? {} : (JSON.parse(body) as Record<string, unknown>),
        headers: req.headers,
        signatureOk: await signatureOk(req, body),
      };
      seen.push(s);
      const a = s.target === 'AmazonSQS.GetQueueUrl' ? { status: 200, body: '{"QueueUrl":"x"}' } : answer(s);
      res.writeHead(a.status, { 'content-type': 'application/x-amz-json-1.0', ...a.headers });
      res.end(a.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  seen.length = 0;
  answer = () => ({ status: 200, body: '{}' });
});

function calls(config: Partial<SQSClientConfig> = {}) {
  const http = new SqsHttpHandler();
  const sdk = new SQSClient({
    region: 'eu-west-1',
    endpoint: `http://127.0.0.1:${port}`,
    credentials,
    maxAttempts: 1,
    requestHandler: sdkHandler(http),
    ...config,
  });
  return { sdk, send: fastCalls(sdk, http).send };
}

const md5 = (s: string) => createHash('md5').update(s, 'utf8').digest('hex');
const queueUrl = () => `http://127.0.0.1:${port}/000000000000/orders`;

describe("the source's own SQS calls (JSON protocol)", () => {
  it('sends ReceiveMessage as the SDK would: signed, X-Amz-Target, the command input as the JSON body', async () => {
    const { send } = calls();
    const input = {
      QueueUrl: queueUrl(),
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 1,
      MessageAttributeNames: ['All'],
      MessageSystemAttributeNames: ['All' as const],
      VisibilityTimeout: 30,
    };
    await send(new ReceiveMessageCommand(input));
    expect(seen).toHaveLength(1);
    const s = seen[0] as Seen;
    expect(s.signatureOk).toBe(true);
    expect(s.target).toBe('AmazonSQS.ReceiveMessage');
    expect(s.headers['content-type']).toBe('application/x-amz-json-1.0');
    expect(s.headers['x-amzn-query-mode']).toBe('true'); // as the SDK sends it: Query-protocol error codes too
    expect(s.host).toBe(`127.0.0.1:${port}`);
    expect(s.body).toEqual(input);
    expect(s.headers['amz-sdk-invocation-id']).toBeUndefined(); // not through the SDK's stack
  });

  it('signs with a session token, and sends every other command through the SDK', async () => {
    const { send } = calls({ credentials: { ...credentials, sessionToken: 'session/token==' } });
    await send(new GetQueueUrlCommand({ QueueName: 'orders' }));
    await send(
      new DeleteMessageBatchCommand({ QueueUrl: queueUrl(), Entries: [{ Id: '0', ReceiptHandle: 'r0' }] }),
    );
    expect(seen.map((s) => [s.target, s.signatureOk])).toEqual([
      ['AmazonSQS.GetQueueUrl', true],
      ['AmazonSQS.DeleteMessageBatch', true],
    ]);
    expect(seen[0]?.headers['amz-sdk-invocation-id']).toBeDefined();
    expect(seen[1]?.headers['amz-sdk-invocation-id']).toBeUndefined();
    expect(seen[1]?.headers['x-amz-security-token']).toBe('session/token==');
  });

  it("answers in the SDK's shapes: binary attributes as bytes, Successful/Failed of a batch", async () => {
    const { send } = calls();
    answer = (s) =>
      s.target === 'AmazonSQS.ReceiveMessage'
        ? {
            status: 200,
            body: JSON.stringify({
              Messages: [
                {
                  MessageId: 'm1',
                  ReceiptHandle: 'r1',
                  Body: 'héllo',
                  MD5OfBody: md5('héllo'),
                  Attributes: { ApproximateReceiveCount: '1' },
                  MessageAttributes: {
                    bin: { DataType: 'Binary', BinaryValue: Buffer.from([0, 1, 255]).toString('base64') },
                    str: { DataType: 'String', StringValue: 'v' },
                  },
                },
              ],
            }),
          }
        : {
            status: 200,
            body: '{"Successful":[{"Id":"0"}],"Failed":[{"Id":"1","Code":"ReceiptHandleIsInvalid"}]}',
          };
    const r = await send(new ReceiveMessageCommand({ QueueUrl: queueUrl() }));
    const m = r.Messages?.[0];
    expect(m?.Body).toBe('héllo');
    expect(m?.Attributes).toEqual({ ApproximateReceiveCount: '1' });
    expect(m?.MessageAttributes?.['str']?.StringValue).toBe('v');
    expect([...(m?.MessageAttributes?.['bin']?.BinaryValue ?? [])]).toEqual([0, 1, 255]);
    const d = await send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl(),
        Entries: [
          { Id: '0', ReceiptHandle: 'a' },
          { Id: '1', ReceiptHandle: 'b' },
        ],
      }),
    );
    expect(d.Successful).toEqual([{ Id: '0' }]);
    expect(d.Failed?.[0]?.Code).toBe('ReceiptHandleIsInvalid');
  });

  it('hands a receive over with its bodies as they came: the source checks each one against its MD5', async () => {
    answer = () => ({
      status: 200,
      body: JSON.stringify({
        Messages: [
          { MessageId: 'bad-1', ReceiptHandle: 'r1', Body: 'changed', MD5OfBody: md5('original') },
          { MessageId: 'good', ReceiptHandle: 'r2', Body: 'same', MD5OfBody: md5('same') },
        ],
      }),
    });
    const r = await calls().send(new ReceiveMessageCommand({ QueueUrl: queueUrl() }));
    expect(r.Messages?.map((m) => [m.Body, m.MD5OfBody])).toEqual([
      ['changed', md5('original')],
      ['same', md5('same')],
    ]);
  });

  it('turns error answers into errors SQS_ERRORS knows: a missing queue, denied credentials, a proxy page', async () => {
    const { send } = calls();
    const receive = () => send(new ReceiveMessageCommand({ QueueUrl: queueUrl() })).catch((e: unknown) => e);
    answer = () => ({
      status: 400,
      body: '{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}',
      headers: { 'x-amzn-query-error': 'AWS.SimpleQueueService.NonExistentQueue;Sender' },
    });
    const gone = sqsError(await receive(), 'ReceiveMessage on orders');
    expect([gone.code, gone.brokerCode, gone.canRetry]).toEqual(['ERR_BROKER', 'QueueDoesNotExist', false]);
    expect(gone.message).toBe('ReceiveMessage on orders: The specified queue does not exist.');

    answer = () => ({
      status: 400,
      body: '{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"no"}',
    });
    expect(sqsError(await receive(), 'x').code).toBe('ERR_BROKER_AUTH');

    // the code in the x-amzn-ErrorType header (its `:` suffix dropped), before the body's
    answer = () => ({
      status: 400,
      body: '{"message":"slow down"}',
      headers: { 'x-amzn-errortype': 'com.amazonaws.sqs#OverLimit:http://internal.amazon.com/' },
    });
    const over = sqsError(await receive(), 'x');
    expect([over.brokerCode, over.canRetry, over.message]).toEqual(['OverLimit', true, 'x: slow down']);

    // no code at all (a proxy's page, an empty body): named from the status
    const statuses: [number, string, boolean][] = [
      [503, 'ServiceUnavailable', true],
      [500, 'InternalFailure', true],
      [429, 'ThrottlingException', true],
      [404, 'HTTP404', true], // unknown: ERR_BROKER, retried with back-off like any other
    ];
    for (const [status, name, canRetry] of statuses) {
      answer = () => ({
        status,
        body: status === 503 ? '<html>busy</html>' : '',
        headers: { 'content-type': 'text/html' },
      });
      const err = await receive();
      const e = sqsError(err, 'x');
      expect([e.brokerCode, e.canRetry, e.message]).toEqual([
        name,
        canRetry,
        `x: SQS answered HTTP ${status}`,
      ]);
      expect(err).toMatchObject({ $metadata: { httpStatusCode: status } });
    }
  });

  it("corrects a skewed clock from an error answer's Date, so the next request is signed in SQS's time", async () => {
    const { sdk, send } = calls();
    const ahead = Date.now() + 3_600_000;
    answer = () => ({
      status: 400,
      body: '{"__type":"com.amazonaws.sqs#SignatureDoesNotMatch","message":"Signature expired"}',
      headers: { date: new Date(ahead).toUTCString() },
    });
    await expect(send(new ReceiveMessageCommand({ QueueUrl: queueUrl() }))).rejects.toThrow(
      'Signature expired',
    );
    expect(Math.abs((sdk.config.systemClockOffset ?? 0) - 3_600_000)).toBeLessThan(5_000);
    answer = () => ({ status: 200, body: '{}' });
    await send(new ReceiveMessageCommand({ QueueUrl: queueUrl() }));
    const signedAt = amzDate(String(seen[1]?.headers['x-amz-date'])).getTime();
    expect(Math.abs(signedAt - ahead)).toBeLessThan(5_000);
    expect(seen[1]?.signatureOk).toBe(true);

    // An error whose Date is within the tolerance of the corrected clock leaves the offset as it is.
    const offset = sdk.config.systemClockOffset;
    answer = () => ({
      status: 400,
      body: '{"__type":"com.amazonaws.sqs#InvalidParameterValue","message":"no"}',
      headers: { date: new Date(Date.now() + (offset ?? 0) + 60_000).toUTCString() },
    });
    await expect(send(new ReceiveMessageCommand({ QueueUrl: queueUrl() }))).rejects.toThrow('no');
    expect(sdk.config.systemClockOffset).toBe(offset);
  });

  it('leaves a clock that agrees with SQS alone', async () => {
    const { sdk, send } = calls();
    answer = () => ({
      status: 400,
      body: '{"__type":"com.amazonaws.sqs#InvalidParameterValue","message":"no"}',
      headers: { date: new Date(Date.now() + 60_000).toUTCString() },
    });
    await expect(send(new ReceiveMessageCommand({ QueueUrl: queueUrl() }))).rejects.toThrow('no');
    expect(sdk.config.systemClockOffset ?? 0).toBe(0);
  });

  it('with a custom endpoint, posts there whatever the queue URL says', async () => {
    const { send } = calls(); // endpoint: the double
    await send(new ReceiveMessageCommand({ QueueUrl: 'http://127.0.0.1:9/000000000000/elsewhere' }));
    expect(seen.map((s) => [s.host, s.body['QueueUrl'], s.signatureOk])).toEqual([
      [`127.0.0.1:${port}`, 'http://127.0.0.1:9/000000000000/elsewhere', true],
    ]);
  });

  it("with useQueueUrlAsEndpoint: false, posts to the endpoint rules' URL, not the queue URL's origin", async () => {
    const http = new SqsHttpHandler();
    const sdk = new SQSClient({
      region: 'eu-west-1',
      credentials,
      useQueueUrlAsEndpoint: false,
      endpointProvider: () => ({ url: new URL(`http://127.0.0.1:${port}/`) }),
      requestHandler: sdkHandler(http),
    });
    await fastCalls(sdk, http).send(
      new ReceiveMessageCommand({ QueueUrl: 'http://127.0.0.1:9/000000000000/elsewhere' }),
    );
    expect(seen.map((s) => [s.host, s.signatureOk])).toEqual([[`127.0.0.1:${port}`, true]]);
  });

  it("without a custom endpoint, posts to the queue URL's origin (the SDK's useQueueUrlAsEndpoint)", async () => {
    const http = new SqsHttpHandler();
    const sdk = new SQSClient({
      region: 'eu-west-1',
      credentials,
      requestHandler: sdkHandler(http),
    });
    await fastCalls(sdk, http).send(new ReceiveMessageCommand({ QueueUrl: queueUrl() }));
    expect(seen.map((s) => [s.host, s.signatureOk])).toEqual([[`127.0.0.1:${port}`, true]]);
  });

  it('aborts a long poll in progress with its abort signal', async () => {
    const slow = createServer(() => {}); // never answers
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    try {
      const http = new SqsHttpHandler();
      const sdk = new SQSClient({
        region: 'eu-west-1',
        endpoint: `http://127.0.0.1:${(slow.address() as AddressInfo).port}`,
        credentials,
        requestHandler: sdkHandler(http),
      });
      const abort = new AbortController();
      const pending = fastCalls(sdk, http).send(new ReceiveMessageCommand({ QueueUrl: 'q' }), {
        abortSignal: abort.signal,
      });
      abort.abort();
      await expect(pending).rejects.toThrow();
      http.destroy();
    } finally {
      slow.closeAllConnections();
      await new Promise<void>((resolve) => slow.close(() => resolve()));
    }
  });
});
