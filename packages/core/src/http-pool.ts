import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { isHeaderName } from './headers.js';

/**
 * A small HTTP/1.1 client for one origin: keep-alive connections, at most `connections` of them, requests queued
 * beyond that, one request at a time per connection (no pipelining). It is the invoker's transport: a request is
 * written in one `write`, the response head is parsed in JS from the bytes as they come (no per-header callback,
 * no stream object), the body is handed over chunk by chunk. About half the CPU of undici's `request` per call on
 * loopback (see tooling/bench). Deadlines, body limits and retries are the caller's (invoker.ts); this file knows
 * only HTTP framing and connections.
 */

/** Codes of the errors this client raises itself; socket errors keep Node's (`ECONNREFUSED`, `ECONNRESET`, ...). */
export type HttpErrorCode =
  /** The connection closed (or was reset) before the answer was complete. */
  | 'HTTP_SOCKET_CLOSED'
  /** The peer's answer is not HTTP/1.x as this client reads it. */
  | 'HTTP_BAD_RESPONSE'
  /** The request cannot be written (a header name or value, or the path, holds a character HTTP forbids). */
  | 'HTTP_INVALID_REQUEST'
  /** The pool is closing or closed: no new requests. */
  | 'HTTP_POOL_CLOSED'
  /** The pool was destroyed with this request in flight. */
  | 'HTTP_POOL_DESTROYED';

/** An error of the HTTP client (`code` says which); `bytesRead` is what the connection had read when it failed. */
export class HttpError extends Error {
  constructor(
    readonly code: HttpErrorCode,
    message: string,
    readonly bytesRead = 0,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** TLS settings of the connections (Node `tls.connect` options). */
export interface HttpTlsOptions {
  ca?: string | string[];
  cert?: string;
  key?: string;
  rejectUnauthorized?: boolean;
}

/** Options of a pool. */
export interface HttpPoolOptions {
  /** Most connections open at once (default 128). */
  connections?: number | undefined;
  /** Close a connection idle this long, in ms (default 30 s; shorter when the server's `Keep-Alive` says so). */
  keepAliveTimeout?: number | undefined;
  /** TLS settings (https origins only). */
  tls?: HttpTlsOptions | undefined;
}

/** One request: path (with query), method, headers (lower-case names; not `host` or `content-length`, which the
 * pool writes), body. */
export interface HttpRequest {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array | string | undefined;
  /** The Host header when it is not the origin's `host` (a request signed for another spelling of it). */
  readonly host?: string | undefined;
}

/**
 * The callbacks of one exchange. `onConnect` comes first, synchronously, with a function that aborts the request
 * (queued or in flight); then `onHeaders` once (with the body's length when the framing gives it: content-length,
 * or 0 for an answer without a body; undefined for chunked or until-close), `onData` per body chunk (a view into
 * the read buffer: copy what is kept), and `onComplete` or `onError` once. After `abort` nothing more is called.
 */
export interface HttpHandler {
  onConnect(abort: (err: Error) => void): void;
  onHeaders(status: number, headers: Record<string, string>, length: number | undefined): void;
  onData(chunk: Uint8Array): void;
  onComplete(): void;
  onError(err: Error): void;
}

/** Whether a header value holds a character HTTP cannot carry (CR, LF, NUL, ...), a path a space or control.
 * (Header names: `isHeaderName`, headers.ts.) */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const BAD_PATH = /[^\x21-\x7e\x80-\xff]/;

/** A request's bytes: head and body in one buffer (one `write`, one syscall). */
function encodeRequest(host: string, req: HttpRequest): Buffer {
  if (BAD_PATH.test(req.path) || req.path[0] !== '/')
    throw new HttpError('HTTP_INVALID_REQUEST', `invalid request path ${JSON.stringify(req.path)}`);
  if (req.host !== undefined && (req.host === '' || BAD_VALUE.test(req.host)))
    throw new HttpError('HTTP_INVALID_REQUEST', `invalid host ${JSON.stringify(req.host)}`);
  let head = `${req.method} ${req.path} HTTP/1.1\r\nhost: ${req.host ?? host}\r\n`;
  const headers = req.headers;
  for (const name in headers) {
    const value = headers[name] as string;
    if (!isHeaderName(name))
      throw new HttpError('HTTP_INVALID_REQUEST', `invalid header name ${JSON.stringify(name)}`);
    if (BAD_VALUE.test(value))
      throw new HttpError(
        'HTTP_INVALID_REQUEST',
        `invalid value of header ${name}: ${JSON.stringify(value)}`,
      );
    head += `${name}: ${value}\r\n`;
  }
  const body = req.body;
  if (body === undefined) return Buffer.from(`${head}\r\n`, 'latin1');
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  head += `content-length: ${bytes.byteLength}\r\n\r\n`;
  const out = Buffer.allocUnsafe(head.length + bytes.byteLength);
  const at = out.write(head, 0, 'latin1');
  out.set(bytes, at);
  return out;
}

/** Most bytes of a response head (status line and headers). */
const MAX_HEAD = 64 * 1024;
/** Most bytes of a chunk-size line or a trailer line. */
const MAX_LINE = 8 * 1024;
const CRLF2 = Buffer.from('\r\n\r\n');

/** How the body of a response ends. */
const NO_BODY = 0;
const LENGTH = 1;
const CHUNKED = 2;
const UNTIL_CLOSE = 3;

/** Parser states. */
const HEAD = 0;
const BODY = 1;
const CHUNK_SIZE = 2;
const CHUNK_DATA = 3;
const CHUNK_END = 4;
const TRAILERS = 5;

/** Lower-cased header names by the name as sent (a bounded cache: names repeat on every answer of a gateway). */
const NAMES = new Map<string, string>();
const MAX_NAMES = 512;

/** A header name as sent → its lower-case form, or undefined when it is not an HTTP token. */
function headerName(raw: string): string | undefined {
  let name = NAMES.get(raw);
  if (name !== undefined) return name;
  if (!isHeaderName(raw)) return undefined;
  name = raw.toLowerCase();
  if (NAMES.size < MAX_NAMES) NAMES.set(raw, name);
  return name;
}

/** Whether a char code is optional whitespace (space or tab). */
const ows = (c: number) => c === 0x20 || c === 0x09;
/** Whether a char code is a decimal digit. */
const digit = (c: number) => c >= 0x30 && c <= 0x39;

/**
 * A response head parsed from latin1 text: status, headers (lower-case names, values without surrounding
 * whitespace, repeats joined with `, `, a name on Object.prototype as an own property). A string says what is wrong.
 */
function parseHead(
  text: string,
): { status: number; minor: number; headers: Record<string, string> } | string {
  let eol = text.indexOf('\r\n');
  if (eol < 0) eol = text.length;
  // `HTTP/1.x DDD` and then the end of the line or a space and a reason.
  if (
    eol < 12 ||
    !text.startsWith('HTTP/1.') ||
    (text.charCodeAt(7) !== 0x30 && text.charCodeAt(7) !== 0x31) ||
    text.charCodeAt(8) !== 0x20 ||
    !digit(text.charCodeAt(9)) ||
    !digit(text.charCodeAt(10)) ||
    !digit(text.charCodeAt(11)) ||
    (eol > 12 && text.charCodeAt(12) !== 0x20)
  )
    return `bad status line ${JSON.stringify(text.slice(0, Math.min(eol, 64)))}`;
  const minor = text.charCodeAt(7) - 0x30;
  const status =
    (text.charCodeAt(9) - 0x30) * 100 + (text.charCodeAt(10) - 0x30) * 10 + (text.charCodeAt(11) - 0x30);
  if (status < 100) return `bad status line ${JSON.stringify(text.slice(0, Math.min(eol, 64)))}`;
  const headers: Record<string, string> = {};
  let at = eol + 2;
  while (at < text.length) {
    let end = text.indexOf('\r\n', at);
    if (end < 0) end = text.length;
    const colon = text.indexOf(':', at);
    if (colon < 0 || colon > end || colon === at)
      return `bad header line ${JSON.stringify(text.slice(at, Math.min(end, at + 64)))}`;
    const name = headerName(text.slice(at, colon));
    if (name === undefined)
      return `bad header name ${JSON.stringify(text.slice(at, Math.min(colon, at + 64)))}`;
    let from = colon + 1;
    let to = end;
    while (from < to && ows(text.charCodeAt(from))) from++;
    while (to > from && ows(text.charCodeAt(to - 1))) to--;
    const value = text.slice(from, to);
    const prev = headers[name];
    if (prev === undefined) headers[name] = value;
    else if (typeof prev === 'string') headers[name] = `${prev}, ${value}`;
    // A name on Object.prototype (`__proto__`, `constructor`): an own property, never the prototype.
    else
      Object.defineProperty(headers, name, { value, enumerable: true, configurable: true, writable: true });
    at = end + 2;
  }
  return { status, minor, headers };
}

/** One request in the pool: what to send, who hears the answer, and whether it was aborted (while queued). */
interface Pending {
  readonly bytes: Buffer;
  readonly handler: HttpHandler;
  aborted: boolean;
  conn: Connection | undefined;
}

/** One keep-alive connection and the parser of the answer of its current request. */
class Connection {
  readonly socket: Socket;
  current: Pending | undefined = undefined;
  /** When it last went idle (ms, `performance.now()`), and how long it may stay so. */
  idleSince = 0;
  idleLimit: number;
  private state = HEAD;
  private framing = NO_BODY;
  /** Body bytes (LENGTH) or chunk bytes (CHUNK_DATA) still to come. */
  private left = 0;
  private keepAlive = true;
  /** The last `Keep-Alive` header the server sent on this connection, and the idle limit it means (ms). */
  private hint: string | undefined = undefined;
  private hintLimit: number | undefined = undefined;
  /** Bytes of an unfinished head or line. */
  private partial: Buffer | undefined = undefined;
  private dead = false;

  constructor(
    private readonly pool: HttpPool,
    first: Pending,
  ) {
    this.idleLimit = pool.keepAliveTimeout;
    const { host, port, tls, servername } = pool.target;
    this.socket =
      tls === undefined
        ? netConnect({ host, port, noDelay: true })
        : tlsConnect({ host, port, servername, ALPNProtocols: ['http/1.1'], ...tls });
    this.socket.setNoDelay(true);
    this.socket.on('data', (d: Buffer) => this.read(d));
    this.socket.on('end', () => this.ended());
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('close', () => this.fail(undefined));
    this.send(first);
  }

  /** Write a request on this connection (idle, or new). */
  send(p: Pending): void {
    this.current = p;
    p.conn = this;
    this.state = HEAD;
    this.keepAlive = true;
    this.socket.ref();
    this.socket.write(p.bytes);
  }

  /** Close it, failing the request on it (if any) with `err`. */
  kill(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    const p = this.current;
    this.current = undefined;
    this.socket.destroy();
    this.pool.removed(this);
    if (p !== undefined && !p.aborted) p.handler.onError(err);
  }

  private fail(err: Error | undefined): void {
    if (this.dead) return;
    const read = this.socket.bytesRead;
    this.kill(
      err ??
        new HttpError('HTTP_SOCKET_CLOSED', 'the connection closed before the answer was complete', read),
    );
  }

  private ended(): void {
    const p = this.current;
    if (p !== undefined && this.state === BODY && this.framing === UNTIL_CLOSE) {
      this.current = undefined;
      this.kill(new HttpError('HTTP_SOCKET_CLOSED', 'closed'));
      if (!p.aborted) p.handler.onComplete();
      return;
    }
    this.fail(undefined);
  }

  private bad(reason: string): void {
    this.kill(new HttpError('HTTP_BAD_RESPONSE', `invalid HTTP answer: ${reason}`, this.socket.bytesRead));
  }

  /** Bytes from the socket: parse as far as they go. */
  private read(chunk: Buffer): void {
    let b = chunk;
    if (this.partial !== undefined) {
      b = Buffer.concat([this.partial, chunk]);
      this.partial = undefined;
    }
    let at = 0;
    while (at < b.length) {
      const p = this.current;
      if (p === undefined) {
        // Bytes with no request out (or after a complete answer): the connection cannot be trusted any more.
        this.kill(new HttpError('HTTP_BAD_RESPONSE', 'unexpected bytes on an idle connection'));
        return;
      }
      switch (this.state) {
        case HEAD: {
          const end = b.indexOf(CRLF2, at);
          if (end < 0) {
            if (b.length - at > MAX_HEAD) {
              this.bad(`response head over ${MAX_HEAD} bytes`);
              return;
            }
            this.partial = b.subarray(at);
            return;
          }
          if (end - at > MAX_HEAD) {
            this.bad(`response head over ${MAX_HEAD} bytes`);
            return;
          }
          const head = parseHead(b.toString('latin1', at, end));
          at = end + 4;
          if (typeof head === 'string') {
            this.bad(head);
            return;
          }
          if (head.status < 200) {
            // Informational (100 Continue, 103 Early Hints): the real answer follows. 101 was never asked for.
            if (head.status === 101) {
              this.bad('101 Switching Protocols to a request that asked for no upgrade');
              return;
            }
            break;
          }
          if (!this.begin(p, head.status, head.minor, head.headers)) return;
          if (this.framing === NO_BODY) {
            this.complete(p, at < b.length);
            return;
          }
          this.state = this.framing === CHUNKED ? CHUNK_SIZE : BODY;
          break;
        }
        case BODY: {
          if (this.framing === UNTIL_CLOSE) {
            if (!p.aborted) p.handler.onData(b.subarray(at));
            return;
          }
          const n = Math.min(this.left, b.length - at);
          this.left -= n;
          const data = b.subarray(at, at + n);
          at += n;
          if (!p.aborted) p.handler.onData(data);
          if (this.current !== p) return; // the handler aborted (or destroyed the pool): the connection is gone
          if (this.left === 0) {
            this.complete(p, at < b.length);
            if (at < b.length) return;
          }
          break;
        }
        case CHUNK_SIZE:
        case CHUNK_END:
        case TRAILERS: {
          const eol = b.indexOf(10, at); // LF; the CR before it is checked below
          if (eol < 0) {
            if (b.length - at > MAX_LINE) {
              this.bad('chunk line too long');
              return;
            }
            this.partial = b.subarray(at);
            return;
          }
          if (eol === at || b[eol - 1] !== 13) {
            this.bad('chunk line without CRLF');
            return;
          }
          const line = b.toString('latin1', at, eol - 1);
          at = eol + 1;
          if (this.state === CHUNK_END) {
            if (line !== '') {
              this.bad('chunk data longer than its size');
              return;
            }
            this.state = CHUNK_SIZE;
          } else if (this.state === CHUNK_SIZE) {
            const semi = line.indexOf(';');
            const hex = (semi < 0 ? line : line.slice(0, semi)).trim();
            if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) {
              this.bad(`bad chunk size ${JSON.stringify(hex.slice(0, 32))}`);
              return;
            }
            this.left = Number.parseInt(hex, 16);
            this.state = this.left === 0 ? TRAILERS : CHUNK_DATA;
          } else if (line === '') {
            this.complete(p, at < b.length);
            if (at < b.length) return;
          }
          break;
        }
        case CHUNK_DATA: {
          const n = Math.min(this.left, b.length - at);
          this.left -= n;
          const data = b.subarray(at, at + n);
          at += n;
          if (!p.aborted) p.handler.onData(data);
          if (this.left === 0) this.state = CHUNK_END;
          break;
        }
      }
    }
  }

  /** A final answer's head arrived: its framing and keep-alive, then the handler. False when the connection went. */
  private begin(p: Pending, status: number, minor: number, headers: Record<string, string>): boolean {
    const connection = headers['connection']?.toLowerCase();
    this.keepAlive =
      minor === 1 ? !connection?.includes('close') : connection?.includes('keep-alive') === true;
    const hint = headers['keep-alive'];
    if (hint !== undefined && hint !== this.hint) {
      // The server closes an idle connection after `timeout` s: stop using it a second before that. (Read once per
      // connection while the server sends the same hint.)
      this.hint = hint;
      const m = /timeout\s*=\s*(\d+)/i.exec(hint);
      this.hintLimit = m === null ? undefined : Number(m[1]) * 1000 - 1000;
    }
    if (hint !== undefined && this.hintLimit !== undefined) {
      if (this.hintLimit < 1000) this.keepAlive = false;
      else this.idleLimit = Math.min(this.pool.keepAliveTimeout, this.hintLimit);
    }
    const te = headers['transfer-encoding'];
    const cl = headers['content-length'];
    if (status === 204 || status === 304) this.framing = NO_BODY;
    else if (te !== undefined) {
      if (/(?:^|,)\s*chunked\s*$/i.test(te)) this.framing = CHUNKED;
      else {
        this.framing = UNTIL_CLOSE;
        this.keepAlive = false;
      }
      if (cl !== undefined) this.keepAlive = false; // both framings: use neither connection again
    } else if (cl !== undefined) {
      // Repeated identical values (`5, 5`) are one length; anything else is not a length.
      const values = cl.includes(',') ? cl.split(',') : [cl];
      const first = (values[0] as string).trim();
      if (!/^\d{1,15}$/.test(first) || (values.length > 1 && values.some((v) => v.trim() !== first))) {
        this.bad(`bad content-length ${JSON.stringify(cl.slice(0, 32))}`);
        return false;
      }
      this.framing = LENGTH;
      this.left = Number(first);
      if (this.left === 0) this.framing = NO_BODY;
    } else {
      this.framing = UNTIL_CLOSE;
      this.keepAlive = false;
    }
    const length = this.framing === LENGTH ? this.left : this.framing === NO_BODY ? 0 : undefined;
    if (!p.aborted) p.handler.onHeaders(status, headers, length);
    return this.current === p; // false: the handler aborted
  }

  /** The answer is complete: hand the connection back (or close it), then tell the handler. */
  private complete(p: Pending, more: boolean): void {
    this.current = undefined;
    this.state = HEAD;
    if (this.keepAlive && !more) this.pool.released(this);
    else {
      this.dead = true;
      this.socket.destroy();
      this.pool.removed(this);
    }
    if (!p.aborted) p.handler.onComplete();
  }

  /** Abort the request on this connection: the answer will not be read, so the connection goes. */
  abort(p: Pending, err: Error): void {
    if (this.current !== p) return;
    p.aborted = true;
    this.kill(err);
  }

  /** Idle: no request, the socket does not keep the process alive. */
  idle(now: number): void {
    this.idleSince = now;
    this.socket.unref();
  }
}

/** A pool of keep-alive HTTP/1.1 connections to one origin. */
export class HttpPool {
  /** Where connections go. */
  readonly target: {
    host: string;
    port: number;
    servername: string | undefined;
    tls: HttpTlsOptions | undefined;
  };
  readonly keepAliveTimeout: number;
  private readonly hostHeader: string;
  private readonly max: number;
  private readonly idleConns: Connection[] = [];
  private readonly all = new Set<Connection>();
  private readonly queue: Pending[] = [];
  private queueHead = 0;
  private state: 'open' | 'closing' | 'destroyed' = 'open';
  private drained: (() => void) | undefined = undefined;

  constructor(origin: string | URL, options: HttpPoolOptions = {}) {
    const url = typeof origin === 'string' ? new URL(origin) : origin;
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new TypeError(`not an http(s) origin: ${url.origin}`);
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const https = url.protocol === 'https:';
    this.target = {
      host,
      port: url.port === '' ? (https ? 443 : 80) : Number(url.port),
      servername: isIP(host) === 0 ? host : undefined,
      tls: https ? (options.tls ?? {}) : undefined,
    };
    this.hostHeader = url.host;
    this.max = options.connections ?? 128;
    this.keepAliveTimeout = options.keepAliveTimeout ?? 30_000;
  }

  /** The Host header its requests carry (the origin's `host`), unless a request names its own. */
  get host(): string {
    return this.hostHeader;
  }

  /** Whether `destroy` was called. */
  get destroyed(): boolean {
    return this.state === 'destroyed';
  }

  /** Send a request; the handler hears how it went (see HttpHandler). Never throws. */
  dispatch(req: HttpRequest, handler: HttpHandler): void {
    let bytes: Buffer;
    try {
      if (this.state !== 'open')
        throw new HttpError(
          this.state === 'destroyed' ? 'HTTP_POOL_DESTROYED' : 'HTTP_POOL_CLOSED',
          `the HTTP pool of ${this.hostHeader} is ${this.state === 'destroyed' ? 'destroyed' : 'closing'}`,
        );
      bytes = encodeRequest(this.hostHeader, req);
    } catch (err) {
      handler.onConnect(() => undefined);
      handler.onError(err as Error);
      return;
    }
    const p: Pending = { bytes, handler, aborted: false, conn: undefined };
    handler.onConnect((err) => this.abort(p, err));
    if (p.aborted) return;
    const conn = this.takeIdle();
    if (conn !== undefined) conn.send(p);
    else if (this.all.size < this.max) this.open(p);
    else this.queue.push(p);
  }

  /** A new connection carrying `p`. One that cannot even start (`tls.connect` throws synchronously on a key or
   * certificate OpenSSL refuses) fails `p` with that error and is not counted. */
  private open(p: Pending): void {
    let conn: Connection;
    try {
      conn = new Connection(this, p);
    } catch (err) {
      p.handler.onError(err as Error);
      return;
    }
    this.all.add(conn);
  }

  /** The most recently idle connection still worth using (LIFO keeps few connections warm). */
  private takeIdle(): Connection | undefined {
    const list = this.idleConns;
    if (list.length === 0) return undefined;
    const now = performance.now();
    let c = list.pop();
    while (c !== undefined && now - c.idleSince >= c.idleLimit) {
      c.kill(new HttpError('HTTP_SOCKET_CLOSED', 'idle too long'));
      c = list.pop();
    }
    return c;
  }

  private abort(p: Pending, err: Error): void {
    if (p.aborted) return;
    if (p.conn !== undefined) p.conn.abort(p, err);
    else p.aborted = true; // queued: skipped when its turn comes
    this.maybeDrained();
  }

  /** A connection finished its answer and may carry another request. */
  released(c: Connection): void {
    const next = this.nextQueued();
    if (next !== undefined) c.send(next);
    else if (this.state === 'open') {
      c.idle(performance.now());
      this.idleConns.push(c);
    } else {
      c.kill(new HttpError('HTTP_POOL_CLOSED', 'pool closed'));
    }
    this.maybeDrained();
  }

  /** A connection is gone: a queued request may open a new one. */
  removed(c: Connection): void {
    this.all.delete(c);
    const i = this.idleConns.indexOf(c);
    if (i >= 0) this.idleConns.splice(i, 1);
    if (this.state !== 'destroyed') {
      const next = this.nextQueued();
      if (next !== undefined) this.open(next);
    }
    this.maybeDrained();
  }

  private nextQueued(): Pending | undefined {
    while (this.queueHead < this.queue.length) {
      const p = this.queue[this.queueHead] as Pending;
      this.queue[this.queueHead++] = undefined as unknown as Pending;
      if (this.queueHead === this.queue.length) {
        this.queue.length = 0;
        this.queueHead = 0;
      }
      if (!p.aborted) return p;
    }
    return undefined;
  }

  private busy(): boolean {
    if (this.queueHead < this.queue.length) return true;
    for (const c of this.all) if (c.current !== undefined) return true;
    return false;
  }

  private maybeDrained(): void {
    if (this.drained === undefined || this.busy()) return;
    const done = this.drained;
    this.drained = undefined;
    for (const c of [...this.all]) c.kill(new HttpError('HTTP_POOL_CLOSED', 'pool closed'));
    done();
  }

  /** Refuse new requests, let those queued and in flight finish, then close every connection. */
  close(): Promise<void> {
    if (this.state === 'destroyed') return Promise.resolve();
    this.state = 'closing';
    return new Promise<void>((resolve) => {
      const prev = this.drained;
      this.drained = () => {
        prev?.();
        resolve();
      };
      this.maybeDrained();
    });
  }

  /** Fail every request queued or in flight (HTTP_POOL_DESTROYED) and close every connection now. */
  destroy(): void {
    if (this.state === 'destroyed') return;
    this.state = 'destroyed';
    const err = () =>
      new HttpError('HTTP_POOL_DESTROYED', `the HTTP pool of ${this.hostHeader} was destroyed`);
    for (let p = this.nextQueued(); p !== undefined; p = this.nextQueued()) {
      p.aborted = true;
      p.handler.onError(err());
    }
    for (const c of [...this.all]) c.kill(err());
    const done = this.drained;
    this.drained = undefined;
    done?.();
  }
}
