import { createServer as createHttpServer, type RequestListener } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { cleanups, deferred, waitFor } from '@connector/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  HttpError,
  type HttpHandler,
  HttpPool,
  type HttpPoolOptions,
  type HttpRequest,
} from '../src/http-pool.js';

// HttpPool against loopback peers: mostly raw `net` servers writing exact bytes (the framing is the test's), a
// `node:http` server where a real one is what matters (keep-alive reuse, the connection limit).

const cleanup = cleanups();
afterEach(() => cleanup.run());

// ---------------------------------------------------------------------------------------------------------------
// The client side: one request, its callbacks recorded.

/** What one exchange produced; `body` is the concatenation of copies of the `onData` chunks. */
interface Outcome {
  status: number | undefined;
  headers: Record<string, string> | undefined;
  /** The body length `onHeaders` was given (undefined when the framing does not tell it). */
  length: number | undefined;
  body: Buffer;
  /** How many `onData` calls. */
  chunks: number;
  error: (Error & { code?: string; bytesRead?: number }) | undefined;
  /** Every callback in order: connect, headers, data, complete, error. */
  events: string[];
}

/** Callbacks of a test that acts from inside the handler (abort on headers, on data, ...). */
interface Hooks {
  onConnect?(abort: (err: Error) => void): void;
  onHeaders?(call: Call): void;
  onData?(chunk: Uint8Array, call: Call): void;
}

interface Call {
  /** Settles on onComplete or onError (never, for an aborted request). */
  done: Promise<Outcome>;
  outcome: Outcome;
  abort(err?: Error): void;
}

function start(pool: HttpPool, req: HttpRequest, hooks: Hooks = {}): Call {
  const outcome: Outcome = {
    status: undefined,
    headers: undefined,
    length: undefined,
    body: Buffer.alloc(0),
    chunks: 0,
    error: undefined,
    events: [],
  };
  const parts: Buffer[] = [];
  const settled = deferred<Outcome>();
  let abortFn: ((err: Error) => void) | undefined;
  const call: Call = {
    done: settled.promise,
    outcome,
    abort: (err = new Error('aborted by the test')) => abortFn?.(err),
  };
  const handler: HttpHandler = {
    onConnect(abort) {
      outcome.events.push('connect');
      abortFn = abort;
      hooks.onConnect?.(abort);
    },
    onHeaders(status, headers, length) {
      outcome.events.push('headers');
      outcome.status = status;
      outcome.headers = headers;
      outcome.length = length;
      hooks.onHeaders?.(call);
    },
    onData(chunk) {
      outcome.events.push('data');
      outcome.chunks++;
      parts.push(Buffer.from(chunk));
      outcome.body = Buffer.concat(parts);
      hooks.onData?.(chunk, call);
    },
    onComplete() {
      outcome.events.push('complete');
      settled.resolve(outcome);
    },
    onError(err) {
      outcome.events.push('error');
      outcome.error = err;
      settled.resolve(outcome);
    },
  };
  pool.dispatch(req, handler);
  return call;
}

/** Run one request to its end. */
const send = (pool: HttpPool, req: HttpRequest) => start(pool, req).done;

const get = (path = '/', headers: Record<string, string> = {}): HttpRequest => ({
  method: 'GET',
  path,
  headers,
});

/** Events of an exchange with the `data` repeats collapsed (`connect,headers,data,complete`). */
const steps = (o: Outcome) => o.events.filter((e, i) => e !== 'data' || o.events[i - 1] !== 'data').join(',');

function pool(origin: string, options?: HttpPoolOptions): HttpPool {
  return cleanup.use(new HttpPool(origin, options), (p) => p.destroy());
}

// ---------------------------------------------------------------------------------------------------------------
// The server side: a raw TCP peer that splits the request stream into requests and lets the test write the bytes.

interface RawRequest {
  /** `GET /p HTTP/1.1` */
  line: string;
  path: string;
  /** The request's bytes exactly as received (head and body). */
  raw: Buffer;
  body: Buffer;
  /** The connection it came on (0 = first accepted). */
  conn: RawConn;
}

interface RawConn {
  id: number;
  socket: Socket;
  /** Settles on the server socket's `close`. */
  closed: Promise<void>;
  isClosed: boolean;
}

type Respond = (req: RawRequest, conn: RawConn) => void;

interface RawServer {
  origin: string;
  port: number;
  conns: RawConn[];
  requests: RawRequest[];
  /** Most connections open at the same time. */
  maxOpen: number;
}

const CRLF2 = Buffer.from('\r\n\r\n');

async function rawServer(respond: Respond): Promise<RawServer> {
  const conns: RawConn[] = [];
  const requests: RawRequest[] = [];
  let open = 0;
  const state = { maxOpen: 0 };
  const server = createNetServer((socket) => {
    const conn: RawConn = {
      id: conns.length,
      socket,
      isClosed: false,
      closed: new Promise<void>((resolve) =>
        socket.once('close', () => {
          conn.isClosed = true;
          open--;
          resolve();
        }),
      ),
    };
    conns.push(conn);
    state.maxOpen = Math.max(state.maxOpen, ++open);
    socket.on('error', () => undefined); // a reset by the client is not the test's failure
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf(CRLF2);
        if (end < 0) return;
        const head = buf.toString('latin1', 0, end);
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        const total = end + 4 + length;
        if (buf.length < total) return;
        const line = head.split('\r\n', 1)[0] as string;
        const req: RawRequest = {
          line,
          path: line.split(' ')[1] ?? '',
          raw: buf.subarray(0, total),
          body: buf.subarray(end + 4, total),
          conn,
        };
        buf = buf.subarray(total);
        requests.push(req);
        respond(req, conn);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.add(async () => {
    for (const c of conns) c.socket.destroy();
    await new Promise((r) => server.close(r));
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    conns,
    requests,
    get maxOpen() {
      return state.maxOpen;
    },
  };
}

/** A complete answer with a content-length body. */
const answer = (body = 'ok', extra = '') =>
  `HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

/** A peer answering every request with `answer()` (or with what `bytes(req)` says). */
const okServer = (bytes: (req: RawRequest) => string | Buffer = () => answer()) =>
  rawServer((req, conn) => conn.socket.write(bytes(req)));

/** Write `data` in pieces of `size` bytes, one per turn of the event loop (so the client reads them apart). */
async function dribble(socket: Socket, data: string | Buffer, size = 1): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  for (let at = 0; at < bytes.length; at += size) {
    socket.write(bytes.subarray(at, at + size));
    await new Promise((r) => setImmediate(r));
  }
}

/** Answers held by the server until the test writes them. */
function held() {
  const waiting: RawRequest[] = [];
  const respond: Respond = (req) => waiting.push(req);
  return { waiting, respond };
}

/** A node:http server, with how many connections it accepted and how many were ever open at once. */
async function httpServer(listener: RequestListener) {
  const server = createHttpServer(listener);
  const stats = { accepted: 0, open: 0, maxOpen: 0 };
  server.on('connection', (socket: Socket) => {
    stats.accepted++;
    stats.maxOpen = Math.max(stats.maxOpen, ++stats.open);
    socket.on('close', () => stats.open--);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.add(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, stats };
}

/** A port nothing listens on (listened on, then closed). */
async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

function expectHttpError(o: Outcome, code: string): void {
  expect(o.error, `expected ${code}, got events ${steps(o)}`).toBeInstanceOf(HttpError);
  expect(o.error?.code).toBe(code);
  expect(o.events.at(-1)).toBe('error');
  expect(o.events).not.toContain('complete');
}

// ---------------------------------------------------------------------------------------------------------------

describe('content-length body', () => {
  it('reads a body of content-length bytes and keeps the connection', async () => {
    const s = await okServer(() => answer('hello', 'X-Kind: plain\r\n'));
    const p = pool(s.origin);
    const o = await send(p, get('/a'));
    expect(o.error).toBeUndefined();
    expect(steps(o)).toBe('connect,headers,data,complete');
    expect(o.status).toBe(200);
    expect(o.headers).toEqual({ 'content-length': '5', 'x-kind': 'plain' });
    expect(o.body.toString()).toBe('hello');
    expect((await send(p, get('/b'))).body.toString()).toBe('hello');
    expect(s.conns).toHaveLength(1);
  });

  it('reads a head split byte by byte and a body split in many small writes', async () => {
    const body = 'the quick brown fox jumps over the lazy dog';
    const s = await rawServer((_req, conn) => {
      const head = `HTTP/1.1 201 Created\r\nContent-Length: ${body.length}\r\nX-Split: yes\r\n\r\n`;
      void dribble(conn.socket, head, 1).then(() => dribble(conn.socket, body, 3));
    });
    const p = pool(s.origin);
    const o = await send(p, get());
    expect(o.error).toBeUndefined();
    expect(o.status).toBe(201);
    expect(o.headers?.['x-split']).toBe('yes');
    expect(o.body.toString()).toBe(body);
    // and the connection still reads the next answer right
    expect((await send(p, get())).body.toString()).toBe(body);
    expect(s.conns).toHaveLength(1);
  });

  it('reads a 1 MB body, handed over in several chunks', async () => {
    const body = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 10)) & 0xff;
    const s = await okServer(() =>
      Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`), body]),
    );
    const p = pool(s.origin);
    const o = await send(p, get());
    expect(o.error).toBeUndefined();
    expect(o.body.length).toBe(body.length);
    expect(o.body.equals(body)).toBe(true);
    expect(o.chunks).toBeGreaterThan(1);
    expect(steps(o)).toBe('connect,headers,data,complete');
  });

  it('takes a content-length of 0 as no body, and repeated equal lengths as one', async () => {
    const s = await okServer((req) =>
      req.path === '/zero'
        ? 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'
        : 'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 3\r\n\r\nabc',
    );
    const p = pool(s.origin);
    const zero = await send(p, get('/zero'));
    expect(steps(zero)).toBe('connect,headers,complete');
    const twice = await send(p, get('/twice'));
    expect(twice.error).toBeUndefined();
    expect(twice.body.toString()).toBe('abc');
    expect(s.conns).toHaveLength(1);
  });
});

describe('chunked body', () => {
  const chunked =
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
    '5;name=value\r\nhello\r\n' +
    '1;a=1;b="two"\r\n,\r\n' +
    'A\r\n0123456789\r\n' + // upper-case hex: 10 bytes
    '0;last\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n';

  it('decodes chunks with extensions and trailers, sizes and CRLFs split across writes, then reuses the connection', async () => {
    const s = await rawServer((_req, conn) => void dribble(conn.socket, chunked, 1));
    const p = pool(s.origin);
    const o = await send(p, get('/1'));
    expect(o.error).toBeUndefined();
    expect(o.status).toBe(200);
    expect(o.body.toString()).toBe('hello,0123456789');
    expect(o.headers).toEqual({ 'transfer-encoding': 'chunked' }); // trailers are not headers
    expect(steps(o)).toBe('connect,headers,data,complete');
    const again = await send(p, get('/2'));
    expect(again.body.toString()).toBe('hello,0123456789');
    expect(s.requests.map((r) => r.conn.id)).toEqual([0, 0]);
    expect(s.conns).toHaveLength(1);
  });

  it('decodes a chunked answer written in one piece, and in pieces of 7 bytes', async () => {
    const s = await rawServer((req, conn) => {
      if (req.path === '/whole') conn.socket.write(chunked);
      else void dribble(conn.socket, chunked, 7);
    });
    const p = pool(s.origin);
    expect((await send(p, get('/whole'))).body.toString()).toBe('hello,0123456789');
    expect((await send(p, get('/sevens'))).body.toString()).toBe('hello,0123456789');
    expect(s.conns).toHaveLength(1);
  });

  it.each([
    ['`gzip, chunked` as chunked framing (the body is left as it is)', 'gzip, chunked'],
    ['a coding name in any letter case', 'Chunked'],
  ])('takes %s', async (_name, te) => {
    const s = await okServer(
      () => `HTTP/1.1 200 OK\r\nTransfer-Encoding: ${te}\r\n\r\n3\r\nxyz\r\n0\r\n\r\n`,
    );
    const p = pool(s.origin);
    expect((await send(p, get())).body.toString()).toBe('xyz');
    await send(p, get());
    expect(s.conns).toHaveLength(1);
  });

  it.each([
    ['in lower-case hex', 'a\r\n0123456789\r\n0\r\n\r\n', '0123456789'],
    ['with whitespace before an extension (BWS, RFC 9112)', '5 \t;name=value\r\nhello\r\n0\r\n\r\n', 'hello'],
  ])('reads a chunk size %s', async (_name, chunks, body) => {
    const s = await okServer(() => `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}`);
    const p = pool(s.origin);
    const o = await send(p, get());
    expect(o.error).toBeUndefined();
    expect(o.body.toString()).toBe(body);
  });

  it('takes an answer with both transfer-encoding: chunked and content-length as chunked, and does not reuse its connection', async () => {
    const s = await okServer((req) =>
      req.path === '/both'
        ? 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'
        : answer('next'),
    );
    const p = pool(s.origin);
    const o = await send(p, get('/both'));
    expect(o.error).toBeUndefined();
    expect(o.body.toString()).toBe('ok');
    // a server that sends both framings is not trusted with another request: the client closes that connection
    expect((await send(p, get('/next'))).body.toString()).toBe('next');
    expect(s.requests.map((r) => `${r.path}@${r.conn.id}`)).toEqual(['/both@0', '/next@1']);
    await s.conns[0]?.closed;
  });
});

describe('body until close', () => {
  it('reads a body with neither content-length nor chunked until the server closes, and opens a new connection next', async () => {
    const s = await rawServer((_req, conn) => {
      conn.socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part, ');
      setImmediate(() => conn.socket.end('second part'));
    });
    const p = pool(s.origin);
    const o = await send(p, get());
    expect(o.error).toBeUndefined();
    expect(steps(o)).toBe('connect,headers,data,complete');
    expect(o.body.toString()).toBe('first part, second part');
    expect(o.length).toBeUndefined(); // not known before the end
    const next = await send(p, get());
    expect(next.body.toString()).toBe('first part, second part');
    expect(s.requests.map((r) => r.conn.id)).toEqual([0, 1]);
  });

  it('reads until close when transfer-encoding is not chunked last', async () => {
    const s = await rawServer((_req, conn) =>
      conn.socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nraw'),
    );
    const p = pool(s.origin);
    expect((await send(p, get())).body.toString()).toBe('5\r\nraw');
  });
});

describe('connection: close and HTTP/1.0', () => {
  it('does not reuse a connection answered with `connection: close` (and closes it itself)', async () => {
    const s = await okServer(() => answer('bye', 'Connection: close\r\n'));
    const p = pool(s.origin);
    expect((await send(p, get())).body.toString()).toBe('bye');
    await s.conns[0]?.closed; // the server never closes: the client did
    expect((await send(p, get())).body.toString()).toBe('bye');
    expect(s.requests.map((r) => r.conn.id)).toEqual([0, 1]);
  });

  it('does not reuse a connection answered in HTTP/1.0 without keep-alive', async () => {
    const s = await okServer(() => 'HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok');
    const p = pool(s.origin);
    expect((await send(p, get())).body.toString()).toBe('ok');
    expect((await send(p, get())).body.toString()).toBe('ok');
    expect(s.requests.map((r) => r.conn.id)).toEqual([0, 1]);
  });

  it('reuses a connection answered in HTTP/1.0 with `Connection: Keep-Alive`', async () => {
    const s = await okServer(
      () => 'HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 2\r\n\r\nok',
    );
    const p = pool(s.origin);
    await send(p, get());
    await send(p, get());
    expect(s.requests.map((r) => r.conn.id)).toEqual([0, 0]);
  });
});

/** A pool of one connection to a server that holds its answers: `a` sent and waiting, `b` queued behind it. */
async function twoOnOneConnection() {
  const h = held();
  const s = await rawServer(h.respond);
  const p = pool(s.origin, { connections: 1 });
  const a = start(p, get('/a'));
  const b = start(p, get('/b'));
  await waitFor(() => h.waiting.length === 1);
  return { h, s, p, a, b };
}

describe('keep-alive reuse and the connection limit', () => {
  it('sends 20 sequential requests on one connection (node:http server)', async () => {
    const s = await httpServer((req, res) => res.end(`you asked ${req.url}`));
    const p = pool(s.origin);
    for (let i = 0; i < 20; i++) {
      const o = await send(p, get(`/n/${i}`));
      expect(o.status).toBe(200);
      expect(o.body.toString()).toBe(`you asked /n/${i}`);
    }
    expect(s.stats.accepted).toBe(1);
  });

  it('keeps at most `connections` sockets open and queues the rest until one is free', async () => {
    // The server answers in pairs: it holds each request until two are in, so both connections are busy at once.
    const inFlight: (() => void)[] = [];
    let most = 0;
    const s = await httpServer((req, res) => {
      inFlight.push(() => res.end(req.url));
      most = Math.max(most, inFlight.length);
      if (inFlight.length === 2) for (const answer of inFlight.splice(0)) answer();
    });
    const p = pool(s.origin, { connections: 2 });
    const calls = Array.from({ length: 10 }, (_, i) => start(p, get(`/q/${i}`)));
    const outcomes = await Promise.all(calls.map((c) => c.done));
    expect(outcomes.map((o) => o.body.toString())).toEqual(calls.map((_, i) => `/q/${i}`));
    expect(outcomes.every((o) => o.error === undefined)).toBe(true);
    expect(s.stats.maxOpen).toBe(2);
    expect(s.stats.accepted).toBe(2);
    expect(most).toBe(2);
  });

  it('starts a queued request only when an answer completes', async () => {
    const { h, s, a, b } = await twoOnOneConnection();
    expect(b.outcome.events).toEqual(['connect']);
    h.waiting[0]?.conn.socket.write(answer('A'));
    expect((await a.done).body.toString()).toBe('A');
    await waitFor(() => h.waiting.length === 2);
    h.waiting[1]?.conn.socket.write(answer('B'));
    expect((await b.done).body.toString()).toBe('B');
    expect(s.requests.map((r) => `${r.path}@${r.conn.id}`)).toEqual(['/a@0', '/b@0']);
  });
});

describe('informational answers and bodiless statuses', () => {
  it('skips 100 Continue and 103 Early Hints: the handler sees only the final answer', async () => {
    const s = await rawServer((_req, conn) => {
      void dribble(
        conn.socket,
        'HTTP/1.1 100 Continue\r\n\r\n' +
          'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n' +
          answer('final', 'X-Final: 1\r\n'),
        16,
      );
    });
    const p = pool(s.origin);
    const o = await send(p, get());
    expect(o.error).toBeUndefined();
    expect(steps(o)).toBe('connect,headers,data,complete');
    expect(o.status).toBe(200);
    expect(o.headers).toEqual({ 'content-length': '5', 'x-final': '1' });
    expect(o.body.toString()).toBe('final');
  });

  it.each([
    ['204', 'HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n'],
    [
      '304 with a content-length of the representation',
      'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n',
    ],
  ])('completes a %s at once, without a body, and keeps the connection', async (_name, bytes) => {
    // The server writes the head and nothing more, never closing: waiting for a body would hang the test.
    const s = await okServer(() => bytes);
    const p = pool(s.origin);
    const o = await send(p, get());
    expect(o.error).toBeUndefined();
    expect(steps(o)).toBe('connect,headers,complete');
    expect(o.body.length).toBe(0);
    await send(p, get());
    expect(s.conns).toHaveLength(1);
  });

  it.each([
    ['a content-length', answer('hello'), 5],
    ['a content-length of 0', answer(''), 0],
    ['a 204', 'HTTP/1.1 204 No Content\r\n\r\n', 0],
    ['a 304 with a content-length', 'HTTP/1.1 304 Not Modified\r\ncontent-length: 10\r\n\r\n', 0],
    [
      'a chunked body',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
      undefined,
    ],
  ])('hands onHeaders the body length of %s', async (_name, bytes, length) => {
    const s = await okServer(() => bytes);
    const o = await send(pool(s.origin), get());
    expect(o.error).toBeUndefined();
    expect(o.length).toBe(length);
  });

  it('fails a 101 Switching Protocols (no upgrade was asked) with HTTP_BAD_RESPONSE', async () => {
    const s = await okServer(() => 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n');
    const p = pool(s.origin);
    expectHttpError(await send(p, get()), 'HTTP_BAD_RESPONSE');
  });
});

describe('status line', () => {
  it.each([
    ['with headers after it', 'HTTP/1.1 200\r\ncontent-length: 2\r\n\r\nok', 200, 'ok'],
    ['and nothing else in the head', 'HTTP/1.1 204\r\n\r\n', 204, ''],
  ])('reads a status line without a reason phrase %s', async (_name, bytes, status, body) => {
    const s = await okServer(() => bytes);
    const p = pool(s.origin);
    const o = await send(p, get());
    expect(o.error).toBeUndefined();
    expect(o.status).toBe(status);
    expect(o.body.toString()).toBe(body);
  });

  it.each([599, 999])('hands over a final status of %i as it is', async (status) => {
    const s = await okServer(() => `HTTP/1.1 ${status} Whatever\r\ncontent-length: 0\r\n\r\n`);
    const o = await send(pool(s.origin), get());
    expect(o.error).toBeUndefined();
    expect(o.status).toBe(status);
  });
});

describe('response headers', () => {
  /** One GET against a peer that answers `body` with these extra header lines. */
  const answeredWith = async (body: string, headerLines: string) => {
    const s = await okServer(() => answer(body, headerLines));
    return send(pool(s.origin), get());
  };

  it('lower-cases names, trims spaces and tabs around values and joins repeated names with ", "', async () => {
    const o = await answeredWith(
      '',
      'Set-Cookie: a=1\r\nX-UPPER:   spaced value  \r\nset-cookie: b=2\r\nSET-COOKIE: c=3\r\nX-Empty:\r\n' +
        'X-Tab:\t \ttabbed\tvalue\t \r\n',
    );
    expect(o.headers).toEqual({
      'set-cookie': 'a=1, b=2, c=3',
      'x-upper': 'spaced value',
      'x-empty': '',
      'x-tab': 'tabbed\tvalue',
      'content-length': '0',
    });
  });

  it('lower-cases every name of answers with more distinct names than the name cache holds (1000, twice)', async () => {
    // Names are lower-cased once and cached, up to a bound (512); names past it must come out the same.
    const names = Array.from({ length: 1000 }, (_, i) => `X-Many-${i}-Name`);
    const lines = names.map((n, i) => `${n}: ${i}\r\n`).join('');
    const s = await okServer(() => answer('', lines));
    const p = pool(s.origin);
    const want = Object.fromEntries([
      ['content-length', '0'],
      ...names.map((n, i) => [n.toLowerCase(), String(i)]),
    ]);
    expect((await send(p, get())).headers).toEqual(want);
    expect((await send(p, get())).headers).toEqual(want);
  });

  it('keeps `__proto__` and `constructor` headers as own properties, never the prototype', async () => {
    const o = await answeredWith(
      'x',
      '__proto__: {"polluted":true}\r\nconstructor: c1\r\nConstructor: c2\r\n__PROTO__: again\r\n',
    );
    expect(o.error).toBeUndefined();
    const h = o.headers as Record<string, string>;
    expect(Object.getPrototypeOf(h)).toBe(Object.prototype);
    expect(Object.hasOwn(h, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(h, '__proto__')?.value).toBe('{"polluted":true}, again');
    expect(h['constructor']).toBe('c1, c2');
    expect(Object.keys(h).sort()).toEqual(['__proto__', 'constructor', 'content-length'].sort());
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

describe('malformed answers', () => {
  const cl0 = 'content-length: 0\r\n\r\n';
  const chunkedHead = 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n';
  const longReason = 'R'.repeat(100);
  const longLine = 'x '.repeat(50);
  const longName = `${'n'.repeat(40)} ${'m'.repeat(40)}`;
  it.each([
    ['a status line that is not HTTP', `HTTP/2 200 OK\r\n${cl0}`, 'bad status line "HTTP/2 200 OK"'],
    ['a status line of another protocol', `RTSP/1.0 200 OK\r\n${cl0}`, 'bad status line "RTSP/1.0 200 OK"'],
    ['a status line without a status', `HTTP/1.1 OK\r\n${cl0}`, 'bad status line "HTTP/1.1 OK"'],
    [
      'a status line without a space after the version',
      `HTTP/1.1_200 OK\r\n${cl0}`,
      'bad status line "HTTP/1.1_200 OK"',
    ],
    [
      'a status code starting with a letter',
      `HTTP/1.1 A00 OK\r\n${cl0}`,
      'bad status line "HTTP/1.1 A00 OK"',
    ],
    ['a status code with letters', `HTTP/1.1 2x0 OK\r\n${cl0}`, 'bad status line "HTTP/1.1 2x0 OK"'],
    ['a status code ending with a letter', `HTTP/1.1 20A OK\r\n${cl0}`, 'bad status line "HTTP/1.1 20A OK"'],
    [
      'a status code with "/" (just below "0")',
      `HTTP/1.1 3/0 OK\r\n${cl0}`,
      'bad status line "HTTP/1.1 3/0 OK"',
    ],
    [
      'a status code with ":" (just above "9")',
      `HTTP/1.1 2:0 OK\r\n${cl0}`,
      'bad status line "HTTP/1.1 2:0 OK"',
    ],
    ['a status code in exponent notation', `HTTP/1.1 2e2 OK\r\n${cl0}`, 'bad status line "HTTP/1.1 2e2 OK"'],
    ['a four-digit status code', `HTTP/1.1 2000 OK\r\n${cl0}`, 'bad status line "HTTP/1.1 2000 OK"'],
    ['an unknown HTTP minor version', `HTTP/1.2 200 OK\r\n${cl0}`, 'bad status line "HTTP/1.2 200 OK"'],
    ['a status under 100', `HTTP/1.1 099 Odd\r\n${cl0}`, 'bad status line "HTTP/1.1 099 Odd"'],
    [
      'a bad status line, quoted up to 64 characters',
      `HTTP/1.1 2x0 ${longReason}\r\n${cl0}`,
      `bad status line "${`HTTP/1.1 2x0 ${longReason}`.slice(0, 64)}"`,
    ],
    ['garbage', 'SSH-2.0-OpenSSH_9.6\r\n\r\n', 'bad status line "SSH-2.0-OpenSSH_9.6"'],
    [
      'a header line without a colon',
      `HTTP/1.1 200 OK\r\nno colon here\r\n${cl0}`,
      'bad header line "no colon here"',
    ],
    [
      'a last header line without a colon',
      'HTTP/1.1 204 No Content\r\nX-Broken\r\n\r\n',
      'bad header line "X-Broken"',
    ],
    [
      'a header line without a colon, quoted up to 64 characters',
      `HTTP/1.1 200 OK\r\n${longLine}\r\n${cl0}`,
      `bad header line "${longLine.slice(0, 64)}"`,
    ],
    ['a header with an empty name', `HTTP/1.1 200 OK\r\n: value\r\n${cl0}`, 'bad header line ": value"'],
    ['a header name with a space', `HTTP/1.1 200 OK\r\nbad name: v\r\n${cl0}`, 'bad header name "bad name"'],
    [
      'a header name with a space, quoted up to 64 characters',
      `HTTP/1.1 200 OK\r\n${longName}: v\r\n${cl0}`,
      `bad header name "${longName.slice(0, 64)}"`,
    ],
    [
      'a folded header line',
      `HTTP/1.1 200 OK\r\nx-a: 1\r\n  folded: 2\r\n${cl0}`,
      'bad header name "  folded"',
    ],
    [
      'a non-numeric content-length',
      'HTTP/1.1 200 OK\r\ncontent-length: abc\r\n\r\n',
      'bad content-length "abc"',
    ],
    ['a negative content-length', 'HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n', 'bad content-length "-1"'],
    [
      'a content-length of 16 digits',
      'HTTP/1.1 200 OK\r\ncontent-length: 1000000000000000\r\n\r\n',
      'bad content-length "1000000000000000"',
    ],
    [
      'two different content-lengths',
      'HTTP/1.1 200 OK\r\ncontent-length: 5, 6\r\n\r\nhello',
      'bad content-length "5, 6"',
    ],
    ['a bad chunk size', `${chunkedHead}zz\r\n`, 'bad chunk size "zz"'],
    ['a chunk size of 13 hex digits', `${chunkedHead}1000000000000\r\n`, 'bad chunk size "1000000000000"'],
    ['a chunk size without CR', `${chunkedHead}5\nhello\r\n0\r\n\r\n`, 'chunk line without CRLF'],
    // the byte before the LF is a CR, but it is the chunk's last data byte, not the end of the line
    [
      'a bare LF after chunk data ending in CR',
      `${chunkedHead}1\r\n\r\n0\r\n\r\n`,
      'chunk line without CRLF',
    ],
    ['chunk data longer than its size', `${chunkedHead}2\r\nhello\r\n`, 'chunk data longer than its size'],
  ])(
    'fails %s with HTTP_BAD_RESPONSE naming the problem, and the pool goes on on a new connection',
    async (_name, bad, reason) => {
      const s = await okServer((req) => (req.path === '/bad' ? bad : answer('fine')));
      const p = pool(s.origin);
      const o = await send(p, get('/bad'));
      expectHttpError(o, 'HTTP_BAD_RESPONSE');
      expect(o.error?.message).toBe(`invalid HTTP answer: ${reason}`);
      const next = await send(p, get('/ok'));
      expect(next.error).toBeUndefined();
      expect(next.body.toString()).toBe('fine');
      expect(s.requests.map((r) => `${r.path}@${r.conn.id}`)).toEqual(['/bad@0', '/ok@1']);
    },
  );
});

describe('size limits: 64 KiB of response head, 8 KiB of chunk line', () => {
  const chunkedHead = 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n';

  /** A response head of exactly `size` bytes (CRLF CRLF not counted), of a 2-byte body. */
  const headOf = (size: number) => {
    const start = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-pad: ';
    return `${start}${'a'.repeat(size - start.length)}`;
  };

  it('reads a head of exactly 64 KiB', async () => {
    const s = await okServer(() => `${headOf(64 * 1024)}\r\n\r\nok`);
    const o = await send(pool(s.origin), get());
    expect(o.error).toBeUndefined();
    expect(o.body.toString()).toBe('ok');
  });

  it('fails a complete head of 64 KiB and 1 byte with HTTP_BAD_RESPONSE', async () => {
    const s = await okServer(() => `${headOf(64 * 1024 + 1)}\r\n\r\nok`);
    const o = await send(pool(s.origin), get());
    expectHttpError(o, 'HTTP_BAD_RESPONSE');
    expect(o.error?.message).toBe('invalid HTTP answer: response head over 65536 bytes');
  });

  it('fails a head over 64 KiB with HTTP_BAD_RESPONSE without waiting for its end', async () => {
    const s = await okServer(() => `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(70 * 1024)}`);
    const p = pool(s.origin);
    const o = await send(p, get());
    expectHttpError(o, 'HTTP_BAD_RESPONSE');
    expect(o.error?.message).toBe('invalid HTTP answer: response head over 65536 bytes');
  });

  it('fails a chunk line over 8 KiB with HTTP_BAD_RESPONSE without waiting for its end', async () => {
    const s = await okServer(() => `${chunkedHead}1;${'e'.repeat(8 * 1024)}`);
    const o = await send(pool(s.origin), get());
    expectHttpError(o, 'HTTP_BAD_RESPONSE');
    expect(o.error?.message).toBe('invalid HTTP answer: chunk line too long');
  });

  it('waits for the end of a chunk line of exactly 8 KiB', async () => {
    // The line's 8 KiB come in the write of a first chunk; its CRLF only once the client has read that chunk.
    const line = `1;${'e'.repeat(8 * 1024 - 2)}`;
    const s = await okServer(() => `${chunkedHead}3\r\nabc\r\n${line}`);
    const p = pool(s.origin);
    const o = await start(p, get(), {
      onData: (_chunk, call) => {
        if (call.outcome.chunks === 1) s.conns[0]?.socket.write('\r\nX\r\n0\r\n\r\n');
      },
    }).done;
    expect(o.error).toBeUndefined();
    expect(o.body.toString()).toBe('abcX');
  });
});

describe('connection failures', () => {
  it('fails with HTTP_SOCKET_CLOSED when the server closes mid-body, after handing over what came', async () => {
    const head = 'HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n';
    const s = await rawServer((_req, conn) => conn.socket.end(`${head}abcd`));
    const p = pool(s.origin);
    const o = await send(p, get());
    expect(steps(o)).toBe('connect,headers,data,error');
    expectHttpError(o, 'HTTP_SOCKET_CLOSED');
    expect(o.body.toString()).toBe('abcd');
    expect(o.error?.bytesRead).toBe(head.length + 4);
  });

  it('fails with HTTP_SOCKET_CLOSED mid-chunk and mid-head', async () => {
    const s = await rawServer((req, conn) =>
      conn.socket.end(
        req.path === '/chunk'
          ? 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab'
          : 'HTTP/1.1 200 OK\r\ncontent-len',
      ),
    );
    const p = pool(s.origin);
    expectHttpError(await send(p, get('/chunk')), 'HTTP_SOCKET_CLOSED');
    const head = await send(p, get('/head'));
    expectHttpError(head, 'HTTP_SOCKET_CLOSED');
    expect(head.events).toEqual(['connect', 'error']);
  });

  it('fails with HTTP_SOCKET_CLOSED and bytesRead 0 when the server closes before any byte', async () => {
    const s = await rawServer((_req, conn) => conn.socket.end());
    const p = pool(s.origin);
    const o = await send(p, get());
    expectHttpError(o, 'HTTP_SOCKET_CLOSED');
    expect(o.events).toEqual(['connect', 'error']);
    expect(o.error?.bytesRead).toBe(0);
  });

  it('fails with ECONNREFUSED when nothing listens, and every queued request too', async () => {
    const port = await closedPort();
    const p = pool(`http://127.0.0.1:${port}`, { connections: 1 });
    const calls = [start(p, get('/1')), start(p, get('/2'))];
    for (const o of await Promise.all(calls.map((c) => c.done))) {
      expect(o.events).toEqual(['connect', 'error']);
      expect(o.error?.code).toBe('ECONNREFUSED');
    }
  });

  it('fails a request whose connection cannot even start (a TLS key OpenSSL refuses) on onError, never throwing', async () => {
    // tls.connect throws synchronously on such a key: the pool hands that error over like any other, and counts
    // no connection for it (with one allowed, the second request would otherwise wait forever)
    const port = await closedPort();
    const p = pool(`https://127.0.0.1:${port}`, {
      connections: 1,
      tls: { key: 'not a key', cert: 'not a cert' },
    });
    for (const path of ['/1', '/2']) {
      let o: Outcome | undefined;
      expect(() => {
        o = start(p, get(path)).outcome;
      }).not.toThrow();
      expect(o?.events).toEqual(['connect', 'error']);
      expect(o?.error?.code).toMatch(/^ERR_OSSL_/); // ERR_OSSL_PEM_NO_START_LINE
    }
  });
});

describe('the origin', () => {
  it.each([
    [
      'http://gateway.example',
      { host: 'gateway.example', port: 80, servername: 'gateway.example', tls: undefined },
    ],
    [
      'https://gateway.example',
      { host: 'gateway.example', port: 443, servername: 'gateway.example', tls: {} },
    ],
    ['https://127.0.0.1:8443', { host: '127.0.0.1', port: 8443, servername: undefined, tls: {} }],
    ['http://[::1]:8080', { host: '::1', port: 8080, servername: undefined, tls: undefined }],
  ])('takes host, port and TLS server name (none for an IP address) from %s', (origin, target) => {
    expect(pool(origin).target).toEqual(target);
  });

  it('refuses an origin that is not http or https', () => {
    expect(() => new HttpPool('ftp://gateway.example')).toThrow(
      new TypeError('not an http(s) origin: ftp://gateway.example'),
    );
  });
});

describe('request validation', () => {
  it.each<[string, HttpRequest, string]>([
    [
      'CR/LF in a header value',
      { method: 'GET', path: '/', headers: { 'x-a': 'v\r\nx-injected: 1' } },
      'invalid value of header x-a: "v\\r\\nx-injected: 1"',
    ],
    [
      'a bare LF in a header value',
      { method: 'GET', path: '/', headers: { 'x-a': 'v\nx' } },
      'invalid value of header x-a: "v\\nx"',
    ],
    [
      'NUL in a header value',
      { method: 'GET', path: '/', headers: { 'x-a': 'v\0' } },
      'invalid value of header x-a: "v\\u0000"',
    ],
    [
      'a header name with a space',
      { method: 'GET', path: '/', headers: { 'x a': 'v' } },
      'invalid header name "x a"',
    ],
    [
      'a header name with a colon',
      { method: 'GET', path: '/', headers: { 'x:a': 'v' } },
      'invalid header name "x:a"',
    ],
    ['an empty header name', { method: 'GET', path: '/', headers: { '': 'v' } }, 'invalid header name ""'],
    ['a path with a space', { method: 'GET', path: '/a b', headers: {} }, 'invalid request path "/a b"'],
    [
      'a path with CR/LF',
      { method: 'GET', path: '/a\r\nx: y', headers: {} },
      'invalid request path "/a\\r\\nx: y"',
    ],
    [
      'a path not starting with /',
      { method: 'GET', path: 'http://elsewhere/', headers: {} },
      'invalid request path "http://elsewhere/"',
    ],
    ['an empty path', { method: 'POST', path: '', headers: {}, body: 'x' }, 'invalid request path ""'],
    [
      'CR/LF in the host',
      { method: 'GET', path: '/', headers: {}, host: 'a\r\nx: y' },
      'invalid host "a\\r\\nx: y"',
    ],
    ['an empty host', { method: 'GET', path: '/', headers: {}, host: '' }, 'invalid host ""'],
  ])(
    'fails %s with HTTP_INVALID_REQUEST naming it on onError, writing nothing',
    async (_name, req, message) => {
      const s = await okServer(() => answer('valid'));
      const p = pool(s.origin);
      let o: Outcome | undefined;
      expect(() => {
        o = start(p, req).outcome;
      }).not.toThrow();
      // settled synchronously: onConnect, then onError
      expect(o?.events).toEqual(['connect', 'error']);
      expect(o?.error).toBeInstanceOf(HttpError);
      expect(o?.error?.code).toBe('HTTP_INVALID_REQUEST');
      expect(o?.error?.message).toBe(message);
      // the next request is the first and only thing the server ever gets
      expect((await send(p, get('/valid'))).body.toString()).toBe('valid');
      expect(s.conns).toHaveLength(1);
      expect(s.requests.map((r) => r.line)).toEqual(['GET /valid HTTP/1.1']);
    },
  );
});

describe('abort', () => {
  it('never sends a queued request that was aborted', async () => {
    const { h, s, p, a, b } = await twoOnOneConnection();
    b.abort();
    h.waiting[0]?.conn.socket.write(answer('A'));
    expect((await a.done).body.toString()).toBe('A');
    const c = start(p, get('/c'));
    await waitFor(() => h.waiting.length === 2);
    h.waiting[1]?.conn.socket.write(answer('C'));
    expect((await c.done).body.toString()).toBe('C');
    expect(s.requests.map((r) => `${r.path}@${r.conn.id}`)).toEqual(['/a@0', '/c@0']);
    expect(b.outcome.events).toEqual(['connect']);
  });

  it('never sends a request aborted inside onConnect', async () => {
    const s = await okServer();
    const p = pool(s.origin);
    const o = start(p, get('/never'), { onConnect: (abort) => abort(new Error('no')) }).outcome;
    expect((await send(p, get('/yes'))).error).toBeUndefined();
    expect(s.requests.map((r) => r.path)).toEqual(['/yes']);
    expect(o.events).toEqual(['connect']);
  });

  it('destroys the socket of an in-flight request, calls nothing more, and serves the next one', async () => {
    const h = held();
    const s = await rawServer(h.respond);
    const p = pool(s.origin, { connections: 1 });
    const a = start(p, get('/a'), { onData: (_chunk, call) => call.abort() });
    const b = start(p, get('/b')); // queued behind /a
    await waitFor(() => h.waiting.length === 1);
    const first = h.waiting[0] as RawRequest;
    first.conn.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc');
    await first.conn.closed; // the client closed it
    expect(a.outcome.events).toEqual(['connect', 'headers', 'data']);
    // /b went on a new connection
    await waitFor(() => h.waiting.length === 2);
    const second = h.waiting[1] as RawRequest;
    expect(second.path).toBe('/b');
    expect(second.conn.id).toBe(1);
    second.conn.socket.write(answer('B'));
    expect((await b.done).body.toString()).toBe('B');
    expect(a.outcome.events).toEqual(['connect', 'headers', 'data']);
  });

  it('aborts an in-flight request from outside before its answer: no callback, the socket goes', async () => {
    const h = held();
    const s = await rawServer(h.respond);
    const p = pool(s.origin);
    const a = start(p, get('/a'));
    await waitFor(() => h.waiting.length === 1);
    a.abort();
    a.abort(); // twice is harmless
    await h.waiting[0]?.conn.closed;
    expect(a.outcome.events).toEqual(['connect']);
    const b = start(p, get('/b'));
    await waitFor(() => h.waiting.length === 2);
    h.waiting[1]?.conn.socket.write(answer('B'));
    expect((await b.done).body.toString()).toBe('B');
    expect(s.conns).toHaveLength(2);
  });

  it('aborting in onHeaders stops the exchange there', async () => {
    const s = await okServer(() => answer('body'));
    const p = pool(s.origin);
    const a = start(p, get('/a'), { onHeaders: (call) => call.abort() });
    await waitFor(() => s.conns[0]?.isClosed);
    expect(a.outcome.events).toEqual(['connect', 'headers']);
    expect((await send(p, get('/b'))).body.toString()).toBe('body');
  });

  it('aborting on the last chunk of a content-length body does not hand the dead connection to a queued request', async () => {
    const s = await okServer(() => answer('whole'));
    const p = pool(s.origin, { connections: 1 });
    const a = start(p, get('/a'), { onData: (_chunk, call) => call.abort() });
    const queued = [start(p, get('/b')), start(p, get('/c'))]; // each must get a live connection
    for (const o of await Promise.all(queued.map((c) => c.done))) {
      expect(o.error).toBeUndefined();
      expect(o.body.toString()).toBe('whole');
    }
    expect(a.outcome.events).toEqual(['connect', 'headers', 'data']);
    expect(s.requests.map((r) => `${r.path}@${r.conn.id}`)).toEqual(['/a@0', '/b@1', '/c@1']);
  });
});

describe('close() and destroy()', () => {
  it('close() refuses new requests and resolves only after the in-flight answer completed', async () => {
    const h = held();
    const s = await rawServer(h.respond);
    const p = pool(s.origin);
    const order: string[] = [];
    const a = start(p, get('/a'));
    await waitFor(() => h.waiting.length === 1);
    const closed = p.close().then(() => order.push(`closed after ${steps(a.outcome)}`));
    const refused = start(p, get('/late')).outcome;
    expect(refused.events).toEqual(['connect', 'error']);
    expect(refused.error?.code).toBe('HTTP_POOL_CLOSED');
    expect(refused.error?.message).toBe(`the HTTP pool of 127.0.0.1:${s.port} is closing`);
    // half the answer: the client has read it, close() still waits
    const socket = h.waiting[0]?.conn.socket as Socket;
    socket.write('HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nab');
    await waitFor(() => steps(a.outcome) === 'connect,headers,data');
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([]);
    socket.write('cd');
    await closed;
    expect(order).toEqual(['closed after connect,headers,data,complete']);
    expect((await a.done).body.toString()).toBe('abcd');
    await s.conns[0]?.closed; // the pool closed its connection
    expect(s.requests.map((r) => r.path)).toEqual(['/a']);
    expect(p.destroyed).toBe(false);
  });

  it('close() with nothing in flight resolves and closes the idle connections', async () => {
    const s = await okServer();
    const p = pool(s.origin);
    await send(p, get());
    await p.close();
    await s.conns[0]?.closed;
    expect((await send(p, get())).error?.code).toBe('HTTP_POOL_CLOSED');
  });

  it('close() lets queued requests go out and complete first', async () => {
    const s = await okServer((req) => answer(req.path));
    const p = pool(s.origin, { connections: 1 });
    const calls = [start(p, get('/1')), start(p, get('/2')), start(p, get('/3'))];
    await p.close();
    expect(calls.map((c) => steps(c.outcome))).toEqual(Array(3).fill('connect,headers,data,complete'));
    expect(s.requests.map((r) => r.path)).toEqual(['/1', '/2', '/3']);
  });

  it('destroy() fails the in-flight and the queued requests with HTTP_POOL_DESTROYED, and later ones too', async () => {
    const { s, p, a, b } = await twoOnOneConnection();
    const closing = p.close();
    p.destroy();
    for (const o of await Promise.all([a.done, b.done])) {
      expect(o.events).toEqual(['connect', 'error']);
      expect(o.error?.code).toBe('HTTP_POOL_DESTROYED');
      expect(o.error?.message).toBe(`the HTTP pool of 127.0.0.1:${s.port} was destroyed`);
    }
    await closing; // a pending close() resolves too
    expect(p.destroyed).toBe(true);
    await s.conns[0]?.closed;
    const later = await send(p, get('/c'));
    expect(later.error?.code).toBe('HTTP_POOL_DESTROYED');
    expect(later.error?.message).toBe(`the HTTP pool of 127.0.0.1:${s.port} is destroyed`);
    expect(s.requests.map((r) => r.path)).toEqual(['/a']);
  });

  it('close() after destroy() resolves, and the pool stays destroyed', async () => {
    const s = await okServer();
    const p = pool(s.origin);
    p.destroy();
    await p.close();
    expect(p.destroyed).toBe(true);
    expect((await send(p, get())).error?.code).toBe('HTTP_POOL_DESTROYED');
  });

  it('close() called twice: both resolve once the in-flight answer completed', async () => {
    const h = held();
    const s = await rawServer(h.respond);
    const p = pool(s.origin);
    const a = start(p, get('/a'));
    await waitFor(() => h.waiting.length === 1);
    const closes = [p.close(), p.close()];
    h.waiting[0]?.conn.socket.write(answer('A'));
    await Promise.all(closes);
    expect(steps(a.outcome)).toBe('connect,headers,data,complete');
    await s.conns[0]?.closed;
  });

  it('close() closes each connection as soon as its answer completed, not when the last one did', async () => {
    const h = held();
    const s = await rawServer(h.respond);
    const p = pool(s.origin, { connections: 2 });
    const a = start(p, get('/a'));
    const b = start(p, get('/b'));
    await waitFor(() => h.waiting.length === 2);
    const closed = p.close();
    const [first, second] = h.waiting as [RawRequest, RawRequest];
    first.conn.socket.write(answer('A'));
    await a.done;
    await first.conn.closed; // while /b is still waiting for its answer
    expect(b.outcome.events).toEqual(['connect']);
    second.conn.socket.write(answer('B'));
    expect((await b.done).body.toString()).toBe('B');
    await closed;
    await second.conn.closed;
  });

  it('destroy() from inside onData ends the exchange with onError alone', async () => {
    const s = await okServer(() => answer('whole'));
    const p = pool(s.origin);
    const a = start(p, get('/a'), { onData: () => p.destroy() });
    const o = await a.done;
    expect(o.error?.code).toBe('HTTP_POOL_DESTROYED');
    await s.conns[0]?.closed;
    expect(o.events).toEqual(['connect', 'headers', 'data', 'error']);
  });
});

describe('idle connections', () => {
  it('does not keep a connection whose server says `Keep-Alive: timeout=1`', async () => {
    const s = await okServer(() => answer('ok', 'Keep-Alive: timeout=1, max=100\r\n'));
    const p = pool(s.origin);
    await send(p, get());
    await s.conns[0]?.closed; // closed by the client right away
    await send(p, get());
    expect(s.requests.map((r) => r.conn.id)).toEqual([0, 1]);
  });

  it('drops an idle connection the server closed: the next request goes on a new one', async () => {
    const s = await okServer();
    const p = pool(s.origin);
    expect((await send(p, get('/1'))).error).toBeUndefined();
    s.conns[0]?.socket.end();
    await s.conns[0]?.closed;
    const o = await send(p, get('/2'));
    expect(o.error).toBeUndefined();
    expect(s.requests.map((r) => `${r.path}@${r.conn.id}`)).toEqual(['/1@0', '/2@1']);
  });

  it('drops an idle connection that receives bytes nobody asked for', async () => {
    const s = await okServer();
    const p = pool(s.origin);
    await send(p, get('/1'));
    s.conns[0]?.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    await s.conns[0]?.closed;
    expect((await send(p, get('/2'))).error).toBeUndefined();
    expect(s.requests.map((r) => r.conn.id)).toEqual([0, 1]);
  });

  describe('idle time limits (performance.now faked)', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it.each([
      ['keepAliveTimeout', { keepAliveTimeout: 1000 }, '', 1000],
      ['the server hint timeout=5 (4 s)', {}, 'Keep-Alive: timeout=5\r\n', 4000],
      ['the option when under the hint', { keepAliveTimeout: 2000 }, 'Keep-Alive: timeout=60\r\n', 2000],
      ['the server hint timeout=2 (1 s, the shortest kept)', {}, 'Keep-Alive: timeout=2\r\n', 1000],
      ['the server hint timeout=12, max=100 (11 s)', {}, 'Keep-Alive: timeout=12, max=100\r\n', 11_000],
    ])('reuses a connection idle under %s, not one idle that long', async (_name, options, extra, limit) => {
      vi.useFakeTimers({ toFake: ['performance'] });
      const s = await okServer(() => answer('ok', extra));
      const p = pool(s.origin, options);
      await send(p, get());
      vi.advanceTimersByTime(limit - 10);
      await send(p, get());
      expect(s.requests.map((r) => r.conn.id)).toEqual([0, 0]);
      vi.advanceTimersByTime(limit);
      await send(p, get());
      await s.conns[0]?.closed; // the expired one was closed
      expect(s.requests.map((r) => r.conn.id)).toEqual([0, 0, 1]);
    });

    it('honours a Keep-Alive timeout that changes between answers on one connection', async () => {
      vi.useFakeTimers({ toFake: ['performance'] });
      const hints: Record<string, string> = { '/1': 'timeout=60', '/2': 'timeout=5', '/3': 'timeout=5' };
      const s = await okServer((req) => answer('ok', `Keep-Alive: ${hints[req.path]}\r\n`));
      const p = pool(s.origin);
      await send(p, get('/1'));
      await send(p, get('/2')); // same connection; from now on the server closes it after 5 s idle
      vi.advanceTimersByTime(4000);
      await send(p, get('/3'));
      expect(s.requests.map((r) => `${r.path}@${r.conn.id}`)).toEqual(['/1@0', '/2@0', '/3@1']);
    });
  });

  it('keeps its idle connection when another connection fails', async () => {
    const h = held();
    const s = await rawServer(h.respond);
    const p = pool(s.origin, { connections: 2 });
    const a = start(p, get('/a'));
    const b = start(p, get('/b'));
    await waitFor(() => h.waiting.length === 2);
    const [first, second] = h.waiting as [RawRequest, RawRequest];
    first.conn.socket.write(answer('A'));
    await a.done; // its connection is idle now
    second.conn.socket.destroy();
    expectHttpError(await b.done, 'HTTP_SOCKET_CLOSED');
    const c = start(p, get('/c'));
    await waitFor(() => h.waiting.length === 3);
    expect(h.waiting[2]?.conn).toBe(first.conn);
    h.waiting[2]?.conn.socket.write(answer('C'));
    expect((await c.done).body.toString()).toBe('C');
    expect(s.conns).toHaveLength(2);
  });
});

describe('extra bytes after a complete answer', () => {
  // The extra bytes come in the same write as the answer: the client reads them with it, in one chunk.
  it.each([
    ['a content-length answer', `${answer('ok')}EXTRA`, 'ok'],
    [
      'a chunked answer',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nEXTRA',
      'ok',
    ],
    ['a 204', 'HTTP/1.1 204 No Content\r\n\r\nEXTRA', ''],
  ])('completes %s but does not reuse its connection', async (_name, bytes, body) => {
    const s = await okServer((req) => (req.path === '/1' ? bytes : answer('next')));
    const p = pool(s.origin);
    const first = await send(p, get('/1'));
    expect(steps(first)).toBe(body === '' ? 'connect,headers,complete' : 'connect,headers,data,complete');
    expect(first.body.toString()).toBe(body);
    expect((await send(p, get('/2'))).body.toString()).toBe('next');
    expect(s.requests.map((r) => `${r.path}@${r.conn.id}`)).toEqual(['/1@0', '/2@1']);
    await s.conns[0]?.closed; // closed by the client
  });
});

describe('request bytes on the wire', () => {
  it('writes a POST as request line, host, the given headers, content-length and the body', async () => {
    const s = await okServer();
    const p = pool(s.origin);
    await send(p, {
      method: 'POST',
      path: '/p',
      headers: { 'content-type': 'text/plain', 'x-call-id': 'abc 123' },
      body: 'héllo',
    });
    expect(s.requests).toHaveLength(1);
    expect(s.requests[0]?.raw).toEqual(
      Buffer.concat([
        Buffer.from(
          'POST /p HTTP/1.1\r\n' +
            `host: 127.0.0.1:${s.port}\r\n` +
            'content-type: text/plain\r\n' +
            'x-call-id: abc 123\r\n' +
            'content-length: 6\r\n' +
            '\r\n',
        ),
        Buffer.from('héllo', 'utf8'),
      ]),
    );
  });

  it('writes a Uint8Array body as it is, and an empty one with content-length 0', async () => {
    const s = await okServer();
    const p = pool(s.origin);
    const bytes = new Uint8Array([0, 1, 2, 255, 13, 10]);
    await send(p, { method: 'POST', path: '/bin', headers: {}, body: bytes });
    await send(p, { method: 'POST', path: '/empty', headers: {}, body: '' });
    expect(s.requests[0]?.body).toEqual(Buffer.from(bytes));
    expect(s.requests[0]?.raw.toString('latin1')).toContain('\r\ncontent-length: 6\r\n\r\n');
    expect(s.requests[1]?.raw.toString('latin1')).toBe(
      `POST /empty HTTP/1.1\r\nhost: 127.0.0.1:${s.port}\r\ncontent-length: 0\r\n\r\n`,
    );
  });

  it("writes the request's own host in place of the origin's when it has one", async () => {
    const s = await okServer();
    const p = pool(s.origin);
    await send(p, { ...get('/h'), host: 'sqs.example:443' });
    expect(s.requests[0]?.raw.toString('latin1')).toBe('GET /h HTTP/1.1\r\nhost: sqs.example:443\r\n\r\n');
  });

  it('writes a GET with no content-length and no body, the query kept', async () => {
    const s = await okServer();
    const p = pool(s.origin);
    await send(p, get('/g?x=1&y=%20', { accept: 'application/json' }));
    expect(s.requests[0]?.raw.toString('latin1')).toBe(
      `GET /g?x=1&y=%20 HTTP/1.1\r\nhost: 127.0.0.1:${s.port}\r\naccept: application/json\r\n\r\n`,
    );
  });
});
