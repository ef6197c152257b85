import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SqsHttpHandler } from './http.js';
import { SigV4 } from './sigv4.js';

/** What the source's parts call on SQS: an SDK client's `send`, or `fastCalls` in front of one. */
export type SqsCalls = Pick<SQSClient, 'send'>;

/** The calls of the hot path, by command class, with their JSON-protocol operation name (`X-Amz-Target`). */
const OPERATIONS = new Map<unknown, string>([
  [ReceiveMessageCommand, 'ReceiveMessage'],
  [DeleteMessageBatchCommand, 'DeleteMessageBatch'],
  [ChangeMessageVisibilityCommand, 'ChangeMessageVisibility'],
  [ChangeMessageVisibilityBatchCommand, 'ChangeMessageVisibilityBatch'],
]);

/** Where the calls go: origin parts and path, and the Host header that is signed. */
interface Target {
  readonly protocol: string;
  readonly hostname: string;
  readonly port: number | undefined;
  readonly host: string;
  readonly path: string;
}

/** A clock more than this far from SQS's (ms) is corrected from the `Date` of an error answer (as the SDK does). */
const MAX_SKEW = 300_000;

/** `com.amazonaws.sqs#QueueDoesNotExist` → `QueueDoesNotExist` (the SDK's rule for JSON-protocol error codes). */
function errorName(raw: string): string {
  let name = raw.split(',')[0] as string;
  name = name.split(':')[0] as string;
  return name.includes('#') ? (name.split('#')[1] as string) : name;
}

/** A name for an error answer without a code (a proxy's page, an empty body), from its status. */
const byStatus = (status: number): string =>
  status === 429
    ? 'ThrottlingException'
    : status === 503
      ? 'ServiceUnavailable'
      : status >= 500
        ? 'InternalFailure'
        : `HTTP${status}`;

/**
 * ReceiveMessage, DeleteMessageBatch and ChangeMessageVisibility(Batch) in SQS's JSON protocol, sent by the source
 * itself: the same request the SDK sends (body, `X-Amz-Target`, SigV4 with the SDK client's credentials, region,
 * endpoint and clock offset), without the SDK's middleware stack, whose schema serde, endpoint rules, retry and
 * signing code cost ~0.5 ms of CPU a call, these ~0.13 ms (README, Fast path). Answers come back in the SDK's
 * output shapes; an error answer becomes an error named like the SDK's (`QueueDoesNotExist`, ...), for SQS_ERRORS.
 * Received bodies are handed over unchecked: the source checks each message's MD5 itself (source.ts `intact`), so
 * that one changed body does not fail its whole receive as the SDK's check does. No retry here: the poller, the
 * deleter and the heartbeats each have theirs.
 */
class Wire {
  private signer: SigV4 | undefined;
  private readonly targets = new Map<string, Target>();

  constructor(
    private readonly sdk: SQSClient,
    private readonly http: SqsHttpHandler,
  ) {}

  async call(op: string, input: { QueueUrl?: string | undefined }, signal?: AbortSignal): Promise<unknown> {
    const config = this.sdk.config;
    const body = JSON.stringify(input);
    const queueUrl = input.QueueUrl ?? '';
    const target = this.targets.get(queueUrl) ?? (await this.resolve(queueUrl));
    this.signer ??= new SigV4(await config.region(), 'sqs');
    const credentials = await config.credentials();
    const now = Date.now();
    const headers = this.signer.sign(
      {
        method: 'POST',
        host: target.host,
        path: target.path,
        headers: {
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': `AmazonSQS.${op}`,
          'x-amzn-query-mode': 'true',
        },
        body,
      },
      credentials,
      now + (config.systemClockOffset ?? 0),
    );
    const { response } = await this.http.handle(
      {
        protocol: target.protocol,
        hostname: target.hostname,
        ...(target.port !== undefined ? { port: target.port } : {}),
        method: 'POST',
        path: target.path,
        headers,
        body,
      },
      signal ? { abortSignal: signal } : {},
    );
    const b = response.body;
    const text = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
    if (response.statusCode >= 300) throw this.failure(response.statusCode, response.headers, text, now);
    const output = (text === '' ? {} : JSON.parse(text)) as { Messages?: Message[] };
    if (output.Messages !== undefined) this.received(output.Messages); // a ReceiveMessage answer
    return output;
  }

  /**
   * The endpoint as the SDK picks it: a custom `endpoint` as it is; otherwise the queue URL's origin
   * (`useQueueUrlAsEndpoint`, default on), or without that the endpoint rules for the region (FIPS, dual stack).
   */
  private async resolve(queueUrl: string): Promise<Target> {
    const config = this.sdk.config;
    let url: URL;
    if (config.isCustomEndpoint && config.endpoint !== undefined) {
      const e = await config.endpoint();
      url = new URL(`${e.protocol}//${e.hostname}${e.port ? `:${e.port}` : ''}${e.path}`);
    } else {
      url = config.endpointProvider({
        Region: await config.region(),
        UseFIPS: await config.useFipsEndpoint(),
        UseDualStack: await config.useDualstackEndpoint(),
      }).url;
      if (config.useQueueUrlAsEndpoint && queueUrl !== '') url = new URL(new URL(queueUrl).origin);
    }
    const target: Target = {
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port === '' ? undefined : Number(url.port),
      host: url.host,
      path: url.pathname,
    };
    this.targets.set(queueUrl, target);
    return target;
  }

  /** Binary attributes as bytes (the JSON protocol sends base64). */
  private received(messages: Message[]): void {
    for (const m of messages) {
      const attrs = m.MessageAttributes;
      if (attrs === undefined) continue;
      for (const k of Object.keys(attrs)) {
        // (The list values are "reserved for future use" by SQS: none to decode.)
        const a = attrs[k] as { BinaryValue?: unknown };
        if (typeof a.BinaryValue === 'string') a.BinaryValue = Buffer.from(a.BinaryValue, 'base64');
      }
    }
  }

  /** An error answer as an error named like the SDK's, with its status; a skewed clock is corrected for next time. */
  private failure(status: number, headers: Record<string, string>, text: string, now: number): Error {
    let code = headers['x-amzn-errortype'] ?? '';
    let message = '';
    try {
      const doc = JSON.parse(text) as { __type?: string; code?: string; message?: string; Message?: string };
      if (code === '') code = doc.__type ?? doc.code ?? '';
      message = doc.message ?? doc.Message ?? '';
    } catch {
      // not JSON: named from the status below
    }
    const date = Date.parse(headers['date'] ?? '');
    const config = this.sdk.config;
    if (Number.isFinite(date) && Math.abs(date - (now + (config.systemClockOffset ?? 0))) >= MAX_SKEW)
      config.systemClockOffset = date - now;
    return Object.assign(new Error(message || `SQS answered HTTP ${status}`), {
      name: code === '' ? byStatus(status) : errorName(code),
      $metadata: { httpStatusCode: status },
    });
  }
}

/**
 * `sdk`'s `send`, with the calls of the hot path (see `Wire`) sent by the source over `http`, the handler the SDK
 * client sends with too; every other command goes through the SDK as before.
 */
export function fastCalls(sdk: SQSClient, http: SqsHttpHandler): SqsCalls {
  const wire = new Wire(sdk, http);
  const send = (command: { input: object }, options?: { abortSignal?: AbortSignal }): Promise<unknown> => {
    const op = OPERATIONS.get(command.constructor);
    if (op === undefined) return (sdk.send as (c: object, o?: object) => Promise<unknown>)(command, options);
    return wire.call(op, command.input, options?.abortSignal);
  };
  return { send: send as SQSClient['send'] };
}
