import type { SQSClientConfig } from '@aws-sdk/client-sqs';
import { type HttpHandler, HttpPool } from '@connector/core';

/** The parts of the SDK's HttpRequest the handler reads. */
interface SdkRequest {
  readonly protocol: string;
  readonly hostname: string;
  readonly port?: number;
  readonly method: string;
  readonly path: string;
  readonly query?: Record<string, string | (string | null)[] | null>;
  readonly headers: Record<string, string>;
  readonly body?: string | Uint8Array;
}

/** The SDK's HttpResponse, as its deserializers read it (a whole body is accepted in place of a stream). */
interface SdkResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
}

/** Longest an SQS call may take, connecting included (ms): a long poll waits at most 20 s for messages. */
export const REQUEST_TIMEOUT = 60_000;

/** Connections per SQS origin, and how long an idle one is kept (shorter when SQS's `Keep-Alive` says so). */
const POOL = { connections: 50, keepAliveTimeout: 60_000 } as const;

/** The HTTP client's errors under the Node codes the SDK's retry and `SQS_ERRORS` know as transient. */
const NODE_CODES: Record<string, string> = {
  HTTP_SOCKET_CLOSED: 'ECONNRESET',
  HTTP_BAD_RESPONSE: 'ECONNRESET',
};

/** `?a=1&b=2` of the SDK's query map ('' when there is none: SQS's JSON protocol sends none). */
function queryString(q: SdkRequest['query']): string {
  if (!q) return '';
  const parts: string[] = [];
  for (const k of Object.keys(q)) {
    const v = q[k];
    const name = encodeURIComponent(k);
    if (Array.isArray(v)) for (const x of v) parts.push(`${name}=${encodeURIComponent(x ?? '')}`);
    else if (v != null) parts.push(`${name}=${encodeURIComponent(v)}`);
    else parts.push(name);
  }
  return parts.length > 0 ? `?${parts.join('&')}` : '';
}

/** One call's answer, collected whole; settles once (answer, network error, timeout or abort). */
class Exchange implements HttpHandler {
  private status = 0;
  private headers: Record<string, string> = {};
  private chunks: Buffer[] = [];
  private timer: NodeJS.Timeout | undefined;
  private abort: ((err: Error) => void) | undefined;

  constructor(
    private readonly resolve: (r: { response: SdkResponse }) => void,
    private readonly reject: (err: unknown) => void,
    private readonly signal: AbortSignal | undefined,
    private readonly timeout: number,
  ) {}

  onConnect(abort: (err: Error) => void): void {
    this.abort = abort;
    if (this.signal?.aborted) {
      this.aborted();
      return;
    }
    this.signal?.addEventListener('abort', this.aborted, { once: true });
    this.timer = setTimeout(this.timedOut, this.timeout);
  }

  onHeaders(status: number, headers: Record<string, string>): void {
    this.status = status;
    this.headers = headers;
  }

  onData(chunk: Uint8Array): void {
    this.chunks.push(Buffer.from(chunk)); // a copy: the chunk is a view into the connection's read buffer
  }

  onComplete(): void {
    this.done();
    const c = this.chunks;
    const body = c.length === 1 ? (c[0] as Buffer) : Buffer.concat(c);
    this.resolve({ response: { statusCode: this.status, headers: this.headers, body } });
  }

  onError(err: Error): void {
    this.done();
    const code = NODE_CODES[(err as { code?: string }).code ?? ''];
    if (code !== undefined) Object.assign(err, { code });
    this.reject(err);
  }

  private done(): void {
    clearTimeout(this.timer);
    this.signal?.removeEventListener('abort', this.aborted);
  }

  private readonly aborted = (): void => {
    this.fail(Object.assign(new Error('Request aborted'), { name: 'AbortError' }));
  };

  private readonly timedOut = (): void => {
    this.fail(
      Object.assign(new Error(`no answer from SQS within ${this.timeout} ms`), {
        name: 'TimeoutError',
        code: 'ETIMEDOUT',
      }),
    );
  };

  /** End the call with `err` (the pool calls nothing more after an abort). */
  private fail(err: Error): void {
    this.abort?.(err);
    this.onError(err);
  }
}

/**
 * An AWS SDK request handler on core's HTTP client (`HttpPool`, the invoker's transport: a keep-alive pool per
 * origin, a request in one write, the answer parsed without streams) instead of the SDK's default on node:http, whose
 * client and streams cost more CPU per call than request signing. The fast path (wire.ts) sends over it too. Bodies
 * come back whole (SQS answers are small JSON documents); every call has a deadline (`REQUEST_TIMEOUT`).
 */
export class SqsHttpHandler {
  private readonly pools = new Map<string, HttpPool>();

  /** `timeout`: longest a call may take, in ms (default `REQUEST_TIMEOUT`). */
  constructor(private readonly timeout = REQUEST_TIMEOUT) {}

  /** What the SDK reads of a handler. */
  readonly metadata = { handlerProtocol: 'http/1.1' };

  /** Send one signed request; rejects with the network error (the client's codes as Node's, see NODE_CODES). */
  handle(req: SdkRequest, options: { abortSignal?: AbortSignal } = {}): Promise<{ response: SdkResponse }> {
    const origin = `${req.protocol}//${req.hostname}${req.port ? `:${req.port}` : ''}`;
    let pool = this.pools.get(origin);
    if (pool === undefined) {
      pool = new HttpPool(origin, POOL);
      this.pools.set(origin, pool);
    }
    // The pool writes Host and Content-Length itself; the signed Host goes as the request's own when it differs.
    let host: string | undefined;
    const headers: Record<string, string> = {};
    for (const name of Object.keys(req.headers)) {
      const lower = name.toLowerCase();
      if (lower === 'host') host = req.headers[name];
      else if (lower !== 'content-length') headers[name] = req.headers[name] as string;
    }
    const p = pool;
    return new Promise((resolve, reject) => {
      p.dispatch(
        {
          method: req.method as 'POST',
          path: req.path + queryString(req.query),
          headers,
          body: req.body,
          host: host === undefined || host === p.host ? undefined : host,
        },
        new Exchange(resolve, reject, options.abortSignal, this.timeout),
      );
    });
  }

  /** The SDK's hook for changing a handler's settings at run time: none to change here. */
  updateHttpClientConfig(): void {}

  /** The SDK's view of the handler's settings: none. */
  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  /** Close the pools once their calls in flight have answered (the SDK calls it from `client.destroy()`). */
  destroy(): void {
    for (const pool of this.pools.values()) void pool.close();
    this.pools.clear();
  }
}

/** `handler` as the SDK's config type names a request handler (the SDK only calls the methods above). */
export const sdkHandler = (handler: SqsHttpHandler): NonNullable<SQSClientConfig['requestHandler']> =>
  handler as unknown as NonNullable<SQSClientConfig['requestHandler']>;
