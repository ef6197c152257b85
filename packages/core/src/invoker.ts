import { isUtf8 } from 'node:buffer';
import { rootCertificates } from 'node:tls';
import type { Context } from '@opentelemetry/api';
import { createGatewayAuth, type GatewayAuthOptions, gatewayTls, tlsFailure } from './auth.js';
import { CLOUDEVENTS_MODES, type CloudEventsMode, createCloudEvents } from './cloudevents.js';
import type { Credentials } from './config.js';
import { ConfigError, GatewayError, InvokeError, type InvokeErrorCode } from './errors.js';
import { copyMessageHeaders, encodeHeaderValue, functionPath, isPlainHeaderValue } from './headers.js';
import { type HttpHandler, HttpPool, type HttpPoolOptions, type HttpRequest } from './http-pool.js';
import { noopLogger } from './logger.js';
import { registerSecret } from './secrets.js';
import { endAttemptSpan, injectTraceHeaders, startAttemptSpan } from './tracing.js';
import type { BatchItem, FunctionInfo, InvokeOptions, InvokeResult, Logger } from './types.js';

/** Options of the invoker: everything about HTTP to one gateway (TLS and identity settings: `auth.ts`). */
export interface InvokerOptions extends GatewayAuthOptions {
  /** Gateway base URL (a path prefix is kept; userinfo is refused). */
  gatewayUrl: string;
  /** Basic auth for `/system/*` only, never for function routes. */
  credentials?: Credentials | undefined;
  /** `User-Agent` of every request. */
  userAgent: string;
  /** Sent as `X-Connector`. */
  connectorName: string;
  /** Whole-request deadline of an invocation in ms (`upstream_timeout`). */
  timeout: number;
  /** Whole-request deadline of a `/system` call in ms (default: `timeout`, at most 30 s). */
  systemTimeout?: number | undefined;
  /** Pool size (default 128). */
  connections?: number | undefined;
  /** Send `X-Topic` (default true). */
  sendTopic?: boolean | undefined;
  /** Content-Type unless the message sets one. */
  contentType?: string | undefined;
  /** Invoke through `/async-function` by default. */
  asyncInvocation?: boolean | undefined;
  /** `X-Callback-Url` of async invocations. */
  asyncCallbackUrl?: string | undefined;
  /** Statuses a retry can help with (default 408, 429, 502, 503, 504). */
  retryOnStatus?: readonly number[] | undefined;
  /** Largest function response body kept, in bytes (default 10 MiB); larger ones fail with ERR_RESPONSE_TOO_LARGE. */
  maxResponseBytes?: number | undefined;
  /** Largest `/system` response body, in bytes (default 16 MiB: some 15,000 functions with annotations). */
  maxSystemBytes?: number | undefined;
  /** Send each message as a CloudEvent: `binary`, `structured` or `off` (default). */
  cloudEvents?: CloudEventsMode | undefined;
  /** The `type` of the CloudEvents the connector makes (default `dev.connector.<source>.message`). */
  cloudEventsType?: string | undefined;
  /** Log request bodies. */
  printRequestBody?: boolean | undefined;
  /** Logger. */
  logger?: Logger | undefined;
}

/** Default statuses worth a retry. */
export const DEFAULT_RETRY_ON_STATUS: readonly number[] = [408, 429, 502, 503, 504];
/** Default `maxResponseBytes`. */
export const DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024;
const DEFAULT_MAX_SYSTEM_BYTES = 16 * 1024 * 1024;

/** Media type of a batch invocation's body. */
export const BATCH_CONTENT_TYPE = 'application/vnd.connector.batch+json';

const EMPTY = new Uint8Array(0);
/** The headers of a call before its answer (never handed out: a failed result gets its own `{}`). */
const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;
const encoder = new TextEncoder();

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** HTTP client error codes → our codes; anything else (socket errors, a bad answer) is a network error (retryable). */
const HTTP_CODES: Readonly<Record<string, InvokeErrorCode>> = {
  HTTP_POOL_CLOSED: 'ERR_ABORTED',
  HTTP_POOL_DESTROYED: 'ERR_ABORTED',
  HTTP_INVALID_REQUEST: 'ERR_INVALID_REQUEST',
};

/** A request failed because its connection was dropped under it (reset, or closed by the peer before an answer):
 * what a pooled keep-alive connection that the server closed while idle looks like. */
function droppedConnection(err: unknown): boolean {
  if (!(err instanceof InvokeError) || err.code !== 'ERR_NETWORK') return false;
  const code = (err.cause as { code?: unknown } | undefined)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'HTTP_SOCKET_CLOSED';
}

/** Normalise an error of one request into an InvokeError (through the table above; TLS failures in one line). */
function invokeErrorOf(err: unknown, what: string, origin: string): InvokeError {
  if (err instanceof InvokeError) return err;
  const code = HTTP_CODES[(err as { code?: string })?.code ?? ''] ?? 'ERR_NETWORK';
  const reason = tlsFailure(err, origin) ?? (err as Error)?.message ?? String(err);
  // A deadline is the Call's own InvokeError (ERR_TIMEOUT); nothing in the table means one.
  const text = code === 'ERR_ABORTED' ? `${what} aborted` : `${what} failed: ${reason}`;
  return new InvokeError(code, text, undefined, { cause: err });
}

/** What one HTTP exchange gave back. */
interface Exchange {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
}

/** How an exchange ended: its answer, or why there is none (always an InvokeError). */
type Settle = (err: InvokeError | undefined, res: Exchange | undefined) => void;

function onDeadline(call: Call): void {
  call.fail(new InvokeError('ERR_TIMEOUT', `${call.what} timed out after ${call.deadline} ms`));
}

/**
 * One request's handler, and its answer once settled: a whole-request deadline (connect, write, wait and body
 * together), the body read into one buffer and cut off past `maxBytes`, never a stream object.
 */
class Call implements Exchange, HttpHandler {
  status = 0;
  body: Uint8Array = EMPTY;
  headers: Record<string, string> = NO_HEADERS;
  private buffer: Uint8Array | undefined = undefined;
  private chunks: Uint8Array[] | undefined = undefined;
  private length = 0;
  private abort: ((err: Error) => void) | undefined = undefined;
  private failure: InvokeError | undefined = undefined;
  private settled = false;
  private readonly timer: NodeJS.Timeout;
  private onAbort: (() => void) | undefined = undefined;

  constructor(
    private readonly origin: string,
    readonly deadline: number,
    private readonly maxBytes: number,
    private readonly keepBody: boolean,
    readonly what: string,
    private readonly signal: AbortSignal | undefined,
    private readonly settle: Settle,
  ) {
    this.timer = setTimeout(onDeadline, deadline, this);
    if (signal !== undefined) {
      const onAbort = () =>
        this.fail(new InvokeError('ERR_ABORTED', `${what} aborted`, undefined, { cause: signal.reason }));
      if (signal.aborted) onAbort();
      else {
        this.onAbort = onAbort;
        signal.addEventListener('abort', onAbort, { once: true });
      }
    }
  }

  /** Settles at once, whether or not the request got a connection yet (a queued one is aborted when it starts). */
  fail(err: InvokeError): void {
    if (this.settled) return;
    this.failure = err;
    this.abort?.(err);
    this.finish(err);
  }

  finish(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    if (this.onAbort !== undefined) this.signal?.removeEventListener('abort', this.onAbort);
    if (err === undefined) this.settle(undefined, this);
    else this.settle(this.failure ?? invokeErrorOf(err, this.what, this.origin), undefined);
  }

  get isSettled(): boolean {
    return this.settled;
  }

  onConnect(abort: (err: Error) => void): void {
    this.abort = abort;
    if (this.failure) abort(this.failure);
  }

  onHeaders(statusCode: number, headers: Record<string, string>, declared: number | undefined): void {
    this.status = statusCode;
    this.headers = headers;
    if (!this.keepBody || declared === undefined) return;
    if (declared > this.maxBytes) {
      this.fail(
        new InvokeError(
          'ERR_RESPONSE_TOO_LARGE',
          `${this.what}: response of ${declared} bytes is over ${this.maxBytes}`,
        ),
      );
    } else if (declared > 0) this.buffer = new Uint8Array(declared);
  }

  onData(chunk: Uint8Array): void {
    if (!this.keepBody) return;
    const { length, buffer } = this;
    const end = length + chunk.length;
    if (end > this.maxBytes) {
      this.fail(
        new InvokeError('ERR_RESPONSE_TOO_LARGE', `${this.what}: response body over ${this.maxBytes} bytes`),
      );
      return;
    }
    if (buffer !== undefined && end <= buffer.length) buffer.set(chunk, length);
    else {
      if (buffer !== undefined) {
        // More than content-length said: keep what came so far, go on in chunks.
        this.chunks = [buffer.subarray(0, length)];
        this.buffer = undefined;
      }
      // The chunk is a view into the connection's read buffer: keep a copy.
      (this.chunks ??= []).push(new Uint8Array(chunk));
    }
    this.length = end;
  }

  onComplete(): void {
    const { buffer, chunks, length } = this;
    if (buffer !== undefined) this.body = length === buffer.length ? buffer : buffer.subarray(0, length);
    else if (chunks !== undefined) {
      const out = new Uint8Array(length);
      let offset = 0;
      for (const c of chunks) {
        out.set(c, offset);
        offset += c.length;
      }
      this.body = out;
    }
    this.finish(undefined);
  }

  onError(err: Error): void {
    this.finish(err);
  }
}

/** One request on `pool.dispatch`; `settle` is called once, with the answer or an InvokeError. */
function request(
  pool: HttpPool,
  origin: string,
  opts: HttpRequest,
  deadline: number,
  maxBytes: number,
  keepBody: boolean,
  what: string,
  signal: AbortSignal | undefined,
  settle: Settle,
): void {
  const call = new Call(origin, deadline, maxBytes, keepBody, what, signal, settle);
  if (call.isSettled) return; // the signal was aborted already
  pool.dispatch(opts, call);
}

/** `request` as a promise (the `/system` and token calls). */
function exchange(
  pool: HttpPool,
  origin: string,
  opts: HttpRequest,
  deadline: number,
  maxBytes: number,
  keepBody: boolean,
  what: string,
  signal?: AbortSignal,
): Promise<Exchange> {
  return new Promise<Exchange>((resolve, reject) =>
    request(pool, origin, opts, deadline, maxBytes, keepBody, what, signal, (err, res) =>
      err === undefined ? resolve(res as Exchange) : reject(err),
    ),
  );
}

/** The invoker: the one place that speaks HTTP to the gateway — URLs, headers, deadlines, response limits, and
 * the classification of every outcome (code, `canRetry`). */
export interface Invoker {
  /** One attempt against one function. Never rejects: a failure is a result with `error` (code + canRetry). */
  invoke(
    fn: FunctionInfo | string,
    topic: string,
    body: Uint8Array | string,
    options?: InvokeOptions,
  ): Promise<InvokeResult>;
  /**
   * One attempt of a batch of messages against one function (body `application/vnd.connector.batch+json`): one
   * result per item, in order. Never rejects. A non-2xx fails every item alike; a 2xx fails the items the function
   * lists in `batchItemFailures` (or every item when the answer cannot be read). `options` apply to the request.
   */
  invokeBatch(
    fn: FunctionInfo | string,
    items: readonly BatchItem[],
    options?: InvokeOptions,
  ): Promise<InvokeResult[]>;
  /** A failed result that made no request (e.g. a function outside the configured namespace). */
  failed(fn: string, topic: string, error: InvokeError, attempt?: number, async?: boolean): InvokeResult;
  /** GET a `/system` path (basic auth, deadline, size limit); the status and the parsed JSON (undefined if none). */
  system(path: string): Promise<{ status: number; json: unknown }>;
  /** Close the pool, waiting for requests in flight (each ends by its deadline at the latest). */
  close(): Promise<void>;
  /** Fail every request in flight now and refuse new ones (a hard stop). */
  destroy(): void;
  /** Whether invocations go through `/async-function` by default. */
  readonly asyncByDefault: boolean;
}

/** Check the settings that end up in every request, so a bad one fails at start, not on every request. */
function validate(o: InvokerOptions): URL {
  let url: URL;
  try {
    url = new URL(o.gatewayUrl);
  } catch {
    throw ConfigError.invalid('gatewayUrl', o.gatewayUrl, 'a URL like http://gateway:8080');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw ConfigError.invalid('gatewayUrl', o.gatewayUrl, 'an http or https URL');
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError(
      'gatewayUrl',
      `invalid gatewayUrl=${JSON.stringify(`${url.protocol}//${url.host}${url.pathname}`)} (credentials removed): expected no user:password in the URL; set basic_auth=true with secret_mount_path, or the credentials option`,
    );
  }
  const header = (name: string, v: string | undefined) => {
    if (v !== undefined && (v === '' || !isPlainHeaderValue(v)))
      throw ConfigError.invalid(name, v, 'printable ASCII (it is sent as an HTTP header)');
  };
  header('userAgent', o.userAgent);
  header('connectorName', o.connectorName);
  header('contentType', o.contentType);
  header('cloudEventsType', o.cloudEventsType);
  if (o.cloudEvents !== undefined && !CLOUDEVENTS_MODES.includes(o.cloudEvents))
    throw ConfigError.invalid('cloudEvents', o.cloudEvents, 'binary, structured or off');
  if (o.asyncCallbackUrl !== undefined) {
    try {
      new URL(o.asyncCallbackUrl);
    } catch {
      throw ConfigError.invalid('asyncCallbackUrl', o.asyncCallbackUrl, 'a URL');
    }
    header('asyncCallbackUrl', o.asyncCallbackUrl);
  }
  for (const [name, v] of [
    ['maxResponseBytes', o.maxResponseBytes],
    ['timeout', o.timeout],
    ['systemTimeout', o.systemTimeout],
  ] as const) {
    if (v !== undefined && !(Number.isFinite(v) && v > 0))
      throw ConfigError.invalid(name, v, 'a positive number');
  }
  // 0 would queue every request behind a connection that never opens.
  if (o.connections !== undefined && !(Number.isInteger(o.connections) && o.connections > 0))
    throw ConfigError.invalid('connections', o.connections, 'a whole number of at least 1');
  return url;
}

/** A JSON body, or undefined when empty or not JSON. */
function parseJson(body: Uint8Array): unknown {
  try {
    return body.length === 0 ? undefined : JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    return undefined;
  }
}

/** What `jsonText` found: no byte needs a JSON escape and all are ASCII (so the bytes are valid UTF-8 too); none
 * needs an escape but some are not ASCII (valid UTF-8 only if `isUtf8` says so); some need an escape. */
const PLAIN_ASCII = 0;
const PLAIN = 1;
const ESCAPED = 2;

/** Whether JSON needs an escape in `b` (a `"`, `\\` or control byte), and whether `b` is all ASCII, in one pass. */
function jsonText(b: Uint8Array): number {
  let high = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i] as number;
    if (c < 0x20 || c === 0x22 || c === 0x5c) return ESCAPED;
    high |= c;
  }
  return high < 0x80 ? PLAIN_ASCII : PLAIN;
}

/** The fixed pieces of a batch body, encoded once. */
const BATCH_START = Buffer.from('{"items":[');
const ITEM_START = Buffer.from('{"id":"');
const NEXT_ITEM_START = Buffer.from(',{"id":"');
const BODY_START = Buffer.from(',"body":"');
const STRING_ITEM_END = Buffer.from('"}');
const BATCH_END = Buffer.from(']}');

/**
 * The body of a batch invocation (see the README's "Batch delivery"), written in one pass into one buffer:
 * `{"items":[{"id","topic","headers","key","contentType","body"|"bodyBase64"}]}`, the same bytes as
 * `JSON.stringify` of those objects. A body that is valid UTF-8 and needs no JSON escape is copied as it is (no
 * string in between); other UTF-8 goes through `JSON.stringify`, anything else is base64. Only the pieces that
 * differ between items are encoded per item. `headersOf` applies the
 * header policy to an item's headers.
 */
function batchBody(
  items: readonly BatchItem[],
  headersOf: (item: BatchItem) => Record<string, string>,
): Uint8Array {
  let size = BATCH_START.length + 2;
  for (let i = 0; i < items.length; i++) size += (items[i] as BatchItem).body.byteLength + 64;
  let out = Buffer.allocUnsafe(size);
  out.set(BATCH_START, 0);
  let at = BATCH_START.length;
  const room = (n: number) => {
    if (at + n <= out.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(out.length * 2, at + n + 64));
    out.copy(bigger, 0, 0, at);
    out = bigger;
  };
  const put = (bytes: Uint8Array) => {
    room(bytes.length);
    out.set(bytes, at);
    at += bytes.length;
  };
  /** A non-negative integer in decimal digits. */
  const putIndex = (n: number) => {
    let digits = 1;
    for (let p = 10; p <= n; p *= 10) digits++;
    room(digits);
    for (let k = at + digits - 1; k >= at; k--, n = Math.floor(n / 10)) out[k] = 0x30 + (n % 10);
    at += digits;
  };
  // What follows the id: the same for consecutive items with the same topic, key and content type and no headers
  // (the common case), so it is encoded once for them.
  let prev: BatchItem | undefined;
  let rest: Uint8Array = EMPTY;
  for (let i = 0; i < items.length; i++) {
    const it = items[i] as BatchItem;
    if (
      prev === undefined ||
      it.headers !== undefined ||
      prev.headers !== undefined ||
      it.topic !== prev.topic ||
      it.key !== prev.key ||
      it.contentType !== prev.contentType
    ) {
      let text = `","topic":${JSON.stringify(it.topic)},"headers":`;
      text += it.headers === undefined ? '{}' : JSON.stringify(headersOf(it));
      if (it.key !== undefined) text += `,"key":${JSON.stringify(it.key)}`;
      if (it.contentType !== undefined) text += `,"contentType":${JSON.stringify(it.contentType)}`;
      rest = Buffer.from(text);
    }
    prev = it;
    // Item ids are indexes: unique within the batch, and what `batchItemFailures` names.
    put(i === 0 ? ITEM_START : NEXT_ITEM_START);
    putIndex(i);
    put(rest);
    const b = it.body;
    const kind = jsonText(b);
    if (kind === PLAIN_ASCII || (kind === PLAIN && isUtf8(b))) {
      put(BODY_START);
      put(b);
      put(STRING_ITEM_END);
    } else if (kind === ESCAPED && isUtf8(b)) {
      const text = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
      put(Buffer.from(`,"body":${JSON.stringify(text)}}`));
    } else {
      put(
        Buffer.from(
          `,"bodyBase64":"${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')}"}`,
        ),
      );
    }
  }
  put(BATCH_END);
  return out.subarray(0, at);
}

/**
 * The items a batch answer fails, by index: none for an empty body or a JSON document without
 * `batchItemFailures`; a reason string when the answer cannot be read (not JSON, not a list, an unknown id), which
 * fails every item (at least once: a retry is safer than a loss).
 */
function batchItemFailures(body: Uint8Array, count: number): Set<number> | string {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  if (text.trim() === '') return new Set();
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return 'the answer is not JSON';
  }
  if (doc === null) return new Set();
  if (typeof doc !== 'object' || Array.isArray(doc)) return 'the answer is not a JSON object';
  const list = (doc as { batchItemFailures?: unknown }).batchItemFailures;
  if (list === undefined || list === null) return new Set();
  if (!Array.isArray(list)) return 'batchItemFailures is not a list';
  const failed = new Set<number>();
  for (const f of list) {
    const id = (f as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    // Our ids are indexes as strings; a function that sends the number back means the same item.
    const i =
      typeof id === 'string' && /^\d+$/.test(id) ? Number(id) : Number.isInteger(id) ? (id as number) : -1;
    if (i < 0 || i >= count) return `batchItemFailures names an unknown itemIdentifier ${JSON.stringify(id)}`;
    failed.add(i);
  }
  return failed;
}

/** A function as the invoker addresses it (built once per FunctionInfo). */
interface Target {
  readonly fn: string;
  readonly name: string;
  readonly ns: string;
  /** Under `/function/`; undefined when the address cannot be one. */
  readonly path: string | undefined;
  /** `invocation of <address>`, the start of its error messages. */
  readonly what: string;
  readonly syncPath: string;
  readonly asyncPath: string;
}

/** Split `name.namespace` at the first dot. */
function splitAddress(address: string): [string, string] {
  const dot = address.indexOf('.');
  return dot < 0 ? [address, ''] : [address.slice(0, dot), address.slice(dot + 1)];
}

/** Create the invoker of one gateway. Throws ConfigError on invalid options. */
export function createInvoker(o: InvokerOptions): Invoker {
  const url = validate(o);
  const prefix = url.pathname.replace(/\/+$/, '');
  const log = (o.logger ?? noopLogger).child({ component: 'invoker' });
  const timeout = o.timeout;
  const systemTimeout = o.systemTimeout ?? Math.min(timeout, 30_000);
  const maxResponseBytes = o.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const maxSystemBytes = o.maxSystemBytes ?? DEFAULT_MAX_SYSTEM_BYTES;
  const retryOn = new Set(o.retryOnStatus ?? DEFAULT_RETRY_ON_STATUS);
  const asyncByDefault = o.asyncInvocation ?? false;
  const sendTopic = o.sendTopic ?? true;
  const cloudEvents = createCloudEvents({
    mode: o.cloudEvents,
    type: o.cloudEventsType,
    connectorName: o.connectorName,
  });
  const tls = gatewayTls(o, url);
  if (tls?.rejectUnauthorized === false)
    log.warn(
      { gateway: url.origin, setting: 'gateway_tls_insecure' },
      'gateway TLS certificate NOT verified (gateway_tls_insecure=true): anyone on the path can impersonate the gateway; set gateway_ca_file instead',
    );
  const poolOptions: HttpPoolOptions = { connections: o.connections ?? 128, keepAliveTimeout: 30_000, tls };
  const pool = new HttpPool(url.origin, poolOptions);
  /**
   * A token endpoint on another origin gets a small pool of its own with the same TLS settings, except that a
   * private CA is added to the public ones there (`ca` alone would replace them).
   */
  const others = new Map<string, HttpPool>();
  const poolFor = (origin: string): HttpPool => {
    if (origin === url.origin) return pool;
    let p = others.get(origin);
    if (p === undefined) {
      const connect = tls?.ca === undefined ? tls : { ...tls, ca: [...rootCertificates, tls.ca].flat() };
      p = new HttpPool(origin, { ...poolOptions, connections: 4, tls: connect });
      others.set(origin, p);
    }
    return p;
  };
  const systemHeaders: Record<string, string> = { 'user-agent': o.userAgent, accept: 'application/json' };
  if (o.credentials) {
    // Never in a log line or readiness text, however the credentials got here.
    registerSecret(o.credentials.password);
    registerSecret(Buffer.from(`${o.credentials.username}:${o.credentials.password}`).toString('base64'));
  }
  const auth = createGatewayAuth(o, {
    gateway: url,
    credentials: o.credentials,
    logger: log,
    async post(target, form) {
      const t = new URL(target);
      const res = await exchange(
        poolFor(t.origin),
        t.origin,
        {
          path: t.pathname + t.search,
          method: 'POST',
          headers: { ...systemHeaders, 'content-type': 'application/x-www-form-urlencoded' },
          body: form,
        },
        systemTimeout,
        maxSystemBytes,
        true,
        `POST ${t.origin}${t.pathname}`,
      );
      return { status: res.status, json: parseJson(res.body) };
    },
  });
  const fnPrefix = `${prefix}/function/`;
  const asyncPrefix = `${prefix}/async-function/`;
  let droppedLogged = 0;

  /** The outcome of a response, decided once: success, or an error with its code and whether a retry can help. */
  const classify = (
    status: number,
    async: boolean,
    fn: string,
    retryable: ReadonlySet<number>,
  ): InvokeError | undefined => {
    if (status >= 200 && status < 300) return undefined;
    if (status === 404)
      return new InvokeError('ERR_FUNCTION_NOT_FOUND', `function ${fn} not found (404)`, 404);
    // Async: the gateway failed to queue it; retry until it does (a 400 — bad callback URL — never will).
    const canRetry = retryable.has(status) || (async && status >= 500);
    return new InvokeError('ERR_INVOKE_STATUS', `function ${fn} answered ${status}`, status, { canRetry });
  };

  const failed = (fn: string, topic: string, error: InvokeError, attempt = 1, async = asyncByDefault) =>
    ({
      topic,
      function: fn,
      status: 0,
      headers: {},
      body: EMPTY,
      duration: 0,
      error,
      async,
      attempt,
      final: true,
    }) satisfies InvokeResult;

  /** A function's address, its path under `/function/` (undefined when it has no valid one) and its request paths. */
  const targetOf = (fn: string, name: string, ns: string): Target => {
    const path = functionPath(name, ns);
    return {
      fn,
      name,
      ns,
      path,
      what: `invocation of ${fn}`,
      syncPath: path === undefined ? '' : fnPrefix + path,
      asyncPath: path === undefined ? '' : asyncPrefix + path,
    };
  };
  /** Built once per function of the topic map (a map rebuild makes new FunctionInfo objects, so never stale). */
  const targets = new WeakMap<FunctionInfo, Target>();
  const addressOf = (target: FunctionInfo | string): Target => {
    if (typeof target === 'string') return targetOf(target, ...splitAddress(target));
    let t = targets.get(target);
    if (t === undefined) targets.set(target, (t = targetOf(target.address, target.name, target.namespace)));
    return t;
  };

  /** The connector's own headers of every invocation (after the message's, so they win). */
  const ownHeaders = (headers: Record<string, string>, async: boolean, opts: InvokeOptions | undefined) => {
    headers['user-agent'] = o.userAgent;
    headers['x-connector'] = o.connectorName;
    if (async) {
      const cb = opts?.callbackUrl ?? o.asyncCallbackUrl;
      if (cb !== undefined && isPlainHeaderValue(cb)) headers['x-callback-url'] = cb;
    }
  };

  /** A message's headers as the header policy lets them through. */
  const messageHeaders = (
    from: InvokeOptions['headers'],
    into: Record<string, string>,
    fn: string,
    topic: string,
  ): Record<string, string> => {
    if (from !== undefined) {
      const dropped = copyMessageHeaders(from, into);
      if (dropped !== undefined && droppedLogged++ < 10)
        log.debug({ function: fn, topic, ...dropped }, 'message headers not forwarded (header policy)');
    }
    return into;
  };

  /**
   * POST a payload to a function: its authentication, the deadline and the response size limit. The answer (or the
   * InvokeError) goes through `done` / `failure` into the one promise the caller gets.
   */
  const post = <T>(
    a: Target,
    requestPath: string,
    headers: Record<string, string>,
    payload: Uint8Array,
    async: boolean,
    opts: InvokeOptions | undefined,
    done: (res: Exchange) => T,
    failure: (err: InvokeError) => T,
  ): Promise<T> => {
    const deadline = opts?.timeout ?? timeout;
    if (auth.functionAuth) {
      const send = (authorization: string) =>
        exchange(
          pool,
          url.origin,
          { path: requestPath, method: 'POST', headers: { ...headers, authorization }, body: payload },
          deadline,
          maxResponseBytes,
          !async,
          a.what,
          opts?.signal,
        );
      return withFunctionToken(a.name, a.ns || 'openfaas-fn', a.what, send).then(done, failure);
    }
    return new Promise<T>((resolve, reject) =>
      request(
        pool,
        url.origin,
        { path: requestPath, method: 'POST', headers, body: payload },
        deadline,
        maxResponseBytes,
        !async,
        a.what,
        opts?.signal,
        (err, res) => {
          try {
            resolve(err === undefined ? done(res as Exchange) : failure(err));
          } catch (e) {
            reject(e);
          }
        },
      ),
    );
  };

  /** The error of an answer: the function asked for a dead letter, or what its status says. */
  const errorOf = (res: Exchange, fn: string, async: boolean, opts: InvokeOptions | undefined) =>
    res.headers['x-connector-outcome']?.toLowerCase() === 'dead-letter'
      ? new InvokeError(
          'ERR_FUNCTION_REJECTED',
          `function ${fn} asked for a dead letter (status ${res.status})`,
          res.status,
        )
      : classify(res.status, async, fn, opts?.retryOn ?? retryOn);

  const invoke = (
    target: FunctionInfo | string,
    topic: string,
    body: Uint8Array | string,
    opts?: InvokeOptions,
  ): Promise<InvokeResult> => {
    const a = addressOf(target);
    const { fn, path } = a;
    const async = opts?.async ?? asyncByDefault;
    if (path === undefined) {
      const err = new InvokeError(
        'ERR_INVALID_REQUEST',
        `function ${JSON.stringify(fn)} has no valid address`,
      );
      return Promise.resolve(failed(fn, topic, err, opts?.attempt ?? 1, async));
    }
    const headers = messageHeaders(opts?.headers, {}, fn, topic);
    let contentType = opts?.contentType;
    if (contentType !== undefined && !isPlainHeaderValue(contentType)) contentType = undefined;
    contentType ??= o.contentType;
    if (contentType !== undefined) headers['content-type'] = contentType;
    ownHeaders(headers, async, opts);
    if (sendTopic && topic !== '') headers['x-topic'] = encodeHeaderValue(topic);
    let payload = typeof body === 'string' ? encoder.encode(body) : body;
    if (cloudEvents !== undefined) payload = cloudEvents.encode(headers, payload, topic, opts);
    if (o.printRequestBody)
      log.info({ function: fn, topic, body: Buffer.from(payload).toString('utf8') }, 'request body');
    const attempt = opts?.attempt ?? 1;
    const requestPath = async ? a.asyncPath : a.syncPath;
    const traceContext = opts?.traceContext;
    const span =
      traceContext === undefined ? undefined : startAttemptSpan(traceContext, url, requestPath, fn, attempt);
    // The one place trace context reaches a function: the message's own `traceparent` passes by the header policy
    // above; under a span, the attempt's replaces it.
    if (span !== undefined) injectTraceHeaders(traceContext as Context, span, headers);
    const started = performance.now();
    const done = post(
      a,
      requestPath,
      headers,
      payload,
      async,
      opts,
      (res): InvokeResult => {
        const result: Mutable<InvokeResult> = {
          topic,
          function: fn,
          status: res.status,
          headers: res.headers,
          body: res.body,
          duration: performance.now() - started,
          async,
          attempt,
          final: true,
        };
        const error = errorOf(res, fn, async, opts);
        if (error) result.error = error;
        const callId = res.headers['x-call-id'];
        if (callId !== undefined) result.callId = callId;
        return result;
      },
      (err) => {
        const r = failed(fn, topic, err, attempt, async);
        r.duration = performance.now() - started;
        return r;
      },
    );
    if (span === undefined) return done;
    return done.then((r) => {
      endAttemptSpan(span, r);
      return r;
    });
  };

  const invokeBatch = (
    target: FunctionInfo | string,
    items: readonly BatchItem[],
    opts?: InvokeOptions,
  ): Promise<InvokeResult[]> => {
    const a = addressOf(target);
    const { fn, path } = a;
    const async = opts?.async ?? asyncByDefault;
    const each = (make: (item: BatchItem, i: number) => InvokeResult) => items.map(make);
    if (path === undefined) {
      const err = new InvokeError(
        'ERR_INVALID_REQUEST',
        `function ${JSON.stringify(fn)} has no valid address`,
      );
      return Promise.resolve(each((it) => failed(fn, it.topic, err, it.attempt ?? 1, async)));
    }
    const headers: Record<string, string> = { 'content-type': BATCH_CONTENT_TYPE };
    ownHeaders(headers, async, opts);
    const payload = batchBody(items, (it) => messageHeaders(it.headers, {}, fn, it.topic));
    if (o.printRequestBody)
      log.info({ function: fn, body: Buffer.from(payload).toString('utf8') }, 'request body');
    const started = performance.now();
    return post(
      a,
      async ? a.asyncPath : a.syncPath,
      headers,
      payload,
      async,
      opts,
      (res) => {
        const duration = performance.now() - started;
        const callId = res.headers['x-call-id'];
        let error = errorOf(res, fn, async, opts);
        // An async batch was only queued: the gateway's answer says nothing per item.
        const failures = error !== undefined || async ? undefined : batchItemFailures(res.body, items.length);
        if (typeof failures === 'string')
          error = new InvokeError(
            'ERR_BATCH_ITEM_FAILED',
            `function ${fn}: unreadable batch answer (${failures}); every item failed`,
            res.status,
          );
        return each((it, i) => {
          const result: Mutable<InvokeResult> = {
            topic: it.topic,
            function: fn,
            status: res.status,
            headers: res.headers,
            body: res.body,
            duration,
            async,
            attempt: it.attempt ?? 1,
            final: true,
          };
          if (error !== undefined) result.error = error;
          else if (typeof failures === 'object' && failures.has(i))
            result.error = new InvokeError(
              'ERR_BATCH_ITEM_FAILED',
              `function ${fn} listed batch item ${i} in batchItemFailures`,
              res.status,
            );
          if (callId !== undefined) result.callId = callId;
          return result;
        });
      },
      (err: InvokeError) => {
        const duration = performance.now() - started;
        return each((it) => {
          const r = failed(fn, it.topic, err, it.attempt ?? 1, async);
          r.duration = duration;
          return r;
        });
      },
    );
  };

  /** A function call with its function-scoped token; after a 401 once more with a fresh token. */
  const withFunctionToken = async (
    name: string,
    ns: string,
    what: string,
    send: (authorization: string) => Promise<Exchange>,
  ): Promise<Exchange> => {
    const token = async () => {
      try {
        return await auth.function(name, ns);
      } catch (err) {
        throw new InvokeError(
          'ERR_NETWORK',
          `${what}: no function token: ${(err as Error).message}`,
          undefined,
          {
            cause: err,
          },
        );
      }
    };
    const first = await token();
    const res = await send(first);
    if (res.status !== 401) return res;
    auth.rejected(first);
    return send(await token());
  };

  /** GET a `/system` path with the gateway's authentication; after a 401 with a token, once more with a fresh one.
   * A GET on a pooled connection that the gateway closed as it went out (reset, or closed before any answer) is
   * sent once more on a new connection, as Go's http.Transport does for idempotent requests. */
  const systemGet = async (path: string): Promise<Exchange> => {
    const get = async (): Promise<{ res: Exchange; authorization: string | undefined }> =>
      getOnce().catch((err: unknown) => {
        if (!droppedConnection(err)) throw err;
        return getOnce();
      });
    const getOnce = async () => {
      const authorization = await auth.system();
      const res = await exchange(
        pool,
        url.origin,
        {
          path: prefix + path,
          method: 'GET',
          headers: authorization === undefined ? systemHeaders : { ...systemHeaders, authorization },
        },
        systemTimeout,
        maxSystemBytes,
        true,
        `GET ${path}`,
      );
      return { res, authorization };
    };
    const first = await get();
    if (first.res.status !== 401 || auth.kind !== 'token' || first.authorization === undefined)
      return first.res;
    auth.rejected(first.authorization);
    return (await get()).res;
  };

  const pools = () => [pool, ...others.values()];
  return {
    asyncByDefault,
    invoke,
    invokeBatch,
    failed,
    async system(path) {
      let res: Exchange;
      try {
        res = await systemGet(path);
      } catch (err) {
        if (err instanceof GatewayError)
          throw new GatewayError(err.code as 'ERR_GATEWAY_STATUS', `gateway: ${err.message}`, err.status, {
            cause: err,
            canRetry: true,
          });
        const e = err as InvokeError;
        const code =
          e.code === 'ERR_TIMEOUT' || e.code === 'ERR_RESPONSE_TOO_LARGE'
            ? e.code
            : 'ERR_GATEWAY_UNREACHABLE';
        throw new GatewayError(code, `gateway: ${e.message}`, undefined, { cause: err, canRetry: true });
      }
      return { status: res.status, json: parseJson(res.body) };
    },
    async close() {
      await Promise.all(pools().map((p) => p.close()));
    },
    destroy() {
      for (const p of pools()) p.destroy();
    },
  };
}
