import type { SQSClientConfig } from '@aws-sdk/client-sqs';
import { Agent } from 'undici';

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

/** undici's network errors under the Node codes the SDK's retry and `SQS_ERRORS` know as transient. */
const NODE_CODES: Record<string, string> = {
  UND_ERR_SOCKET: 'ECONNRESET',
  UND_ERR_CLOSED: 'ECONNRESET',
  UND_ERR_CONNECT_TIMEOUT: 'ETIMEDOUT',
  UND_ERR_HEADERS_TIMEOUT: 'ETIMEDOUT',
  UND_ERR_BODY_TIMEOUT: 'ETIMEDOUT',
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

/**
 * An AWS SDK request handler on undici (a keep-alive pool per origin, like core's invoker) instead of the SDK's
 * default on node:http, whose client and streams cost more CPU per call than request signing: ~20 % of the CPU
 * per message of `pnpm bench --only e2e-sqs`. Bodies come back whole (SQS answers are small JSON documents).
 */
export class UndiciRequestHandler {
  private readonly agent = new Agent({ connections: 50, keepAliveTimeout: 60_000 });

  /** What the SDK reads of a handler. */
  readonly metadata = { handlerProtocol: 'http/1.1' };

  /** Send one signed request; rejects with the network error (undici's codes as Node's, see NODE_CODES). */
  async handle(
    req: SdkRequest,
    options: { abortSignal?: AbortSignal } = {},
  ): Promise<{ response: SdkResponse }> {
    try {
      const res = await this.agent.request({
        origin: `${req.protocol}//${req.hostname}${req.port ? `:${req.port}` : ''}`,
        path: req.path + queryString(req.query),
        method: req.method as 'POST',
        headers: req.headers,
        body: req.body ?? null,
        signal: options.abortSignal ?? null,
      });
      const body = new Uint8Array(await res.body.arrayBuffer());
      const headers: Record<string, string> = {};
      for (const k of Object.keys(res.headers)) {
        const v = res.headers[k];
        if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      }
      return { response: { statusCode: res.statusCode, headers, body } };
    } catch (err) {
      const code = NODE_CODES[(err as { code?: string } | null)?.code ?? ''];
      if (code !== undefined) Object.assign(err as object, { code });
      throw err;
    }
  }

  /** The SDK's hook for changing a handler's settings at run time: none to change here. */
  updateHttpClientConfig(): void {}

  /** The SDK's view of the handler's settings: none. */
  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  /** Close the pool (the SDK calls it from `client.destroy()`). */
  destroy(): void {
    void this.agent.close();
  }
}

/** `handler` as the SDK's config type names a request handler (the SDK only calls the methods above). */
export const sdkHandler = (handler: UndiciRequestHandler): NonNullable<SQSClientConfig['requestHandler']> =>
  handler as unknown as NonNullable<SQSClientConfig['requestHandler']>;
