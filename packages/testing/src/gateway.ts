import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

/** A function as the test gateway serves it. */
export interface FunctionSpec {
  /** Function name (DNS label, no dots). */
  name: string;
  /** Namespace (default: the gateway's default namespace, `openfaas-fn`). */
  namespace?: string;
  /** Annotations: `topic`, `schedule`, ... */
  annotations?: Record<string, string>;
  /** Labels. */
  labels?: Record<string, string>;
  /** What the function does (default: echo the body and content type with 200). */
  handler?: FunctionHandler;
  /**
   * Built-in function authentication (OpenFaaS `jwt_auth=true`): calls need `Authorization: Bearer` with a
   * function-scoped token for `namespace:name` from `/oauth/token` (the gateway must have `iam`), else 401.
   */
  jwtAuth?: boolean;
}

/** A function implementation. */
export type FunctionHandler = (req: FunctionRequest) => FunctionResponse | Promise<FunctionResponse>;

/** The request a function handler receives. */
export interface FunctionRequest {
  method: string;
  /** Path after the function name (`/` when none). */
  path: string;
  query: URLSearchParams;
  /** Lower-case header names. */
  headers: Record<string, string>;
  body: Buffer;
  /** `name.namespace`, or `name` when the gateway has no namespaces. */
  function: string;
  /** True when it came through `/async-function`. */
  async: boolean;
}

/** What a function handler answers. */
export interface FunctionResponse {
  status?: number;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

/** A fault injected in place of (or before) the normal answer; `times` limits how often it applies. */
export type Fault =
  | { status: number; headers?: Record<string, string>; body?: string; times?: number }
  | { delay: number; times?: number }
  | { drop: true; times?: number }
  | { hang: true; times?: number };

/** One request the gateway received. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string>;
  body: Buffer;
  /** `name.namespace` for function calls. */
  function?: string;
  async: boolean;
  /** `Date.now()` at arrival. */
  at: number;
  /** Status answered (set once answered). */
  status?: number;
}

/** Options of `startGateway`. */
export interface GatewayOptions {
  /** Port (default 0: ephemeral). */
  port?: number;
  /** Address (default 127.0.0.1). */
  host?: string;
  /** When set, `/system/*` requires these basic-auth credentials; function routes never do. */
  credentials?: { username: string; password: string };
  /** Namespaces listed by `/system/namespaces`; `false` answers 404 there (a provider without namespaces). */
  namespaces?: string[] | false;
  /** Functions served at start. */
  functions?: FunctionSpec[];
  /** Namespace of functions that name none, and of `/function/name` calls (default `openfaas-fn`). */
  defaultNamespace?: string;
  /** Called once per function call when it is answered (or dropped, or its client went away). */
  onCall?: (call: FunctionCall) => void;
  /** Serve HTTPS: PEM text or file paths; `requestCert` refuses clients without a certificate signed by `ca`. */
  tls?: GatewayTls;
  /** OpenFaaS IAM: `/oauth/token` (RFC 8693 token exchange) and `Authorization: Bearer` required on `/system/*`. */
  iam?: GatewayIam;
}

/** HTTPS settings of the test gateway (each value PEM text or the path of a PEM file). */
export interface GatewayTls {
  cert: string;
  key: string;
  /** CA that client certificates must chain to (with `requestCert`). */
  ca?: string;
  /** Require a client certificate (mutual TLS). */
  requestCert?: boolean;
}

/** OpenFaaS IAM emulation of the test gateway. */
export interface GatewayIam {
  /** Identity tokens (`subject_token`) the gateway trusts; more with `trustIdentity`. */
  identityTokens?: string[];
  /** Lifetime of issued access tokens in seconds (`expires_in`, default 60). */
  expiresIn?: number;
}

/** One access token the test gateway issued at `/oauth/token`. */
export interface IssuedToken {
  /** The access token (opaque). */
  token: string;
  /** `system` for `/system/*`, or `namespace:name` for a function-scoped token. */
  audience: string;
  /** `Date.now()` past which it is refused. */
  expiresAt: number;
  /** The `subject_token` it was exchanged for. */
  subject: string;
}

/** One answered function call, as `onCall` reports it. */
export interface FunctionCall {
  /** `name.namespace` (or `name` without namespaces). */
  function: string;
  /** True through `/async-function` (the status is then the gateway's 202). */
  async: boolean;
  /** The `X-Topic` header, when the caller sent one. */
  topic?: string;
  /** Status answered; 0 when dropped or the client went away first. */
  status: number;
  /** Request body size. */
  bytes: number;
  /** Time from arrival to answer. */
  ms: number;
}

/** A running test gateway. */
export interface TestGateway {
  /** Base URL, `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** Every request received (system, functions, health), in arrival order. */
  readonly requests: RecordedRequest[];
  /** Function calls (sync and async), optionally of one function (`name.ns`, or `name` for the default namespace). */
  invocations(fn?: string): RecordedRequest[];
  /** Add (or replace) a function. */
  addFunction(spec: FunctionSpec): void;
  /** Remove a function. */
  removeFunction(name: string, namespace?: string): void;
  /** Change a function's annotations, labels or handler. */
  updateFunction(
    name: string,
    patch: Partial<Omit<FunctionSpec, 'name' | 'namespace'>>,
    namespace?: string,
  ): void;
  /** Inject a fault for one function (`name.ns` / `name`), all functions (`*`) or the `/system` routes (`system`); null clears it. */
  fault(target: string, fault: Fault | null): void;
  /** Answer every request held by a `hang` fault normally, and clear hang faults. */
  release(): void;
  /** Function requests received and not answered yet. */
  pending(): number;
  /** Resolve once at least `count` invocations (of `fn`) arrived; rejects after `timeout` ms (default 10 s). */
  waitForInvocations(count: number, opts?: { fn?: string; timeout?: number }): Promise<RecordedRequest[]>;
  /** Access tokens issued at `/oauth/token` (IAM mode), oldest first. */
  readonly tokens: IssuedToken[];
  /** Trust another identity token at `/oauth/token` (IAM mode). */
  trustIdentity(token: string): void;
  /** Stop trusting an identity token and revoke every access token issued for it (IAM mode). */
  revokeIdentity(token: string): void;
  /** Expire every access token issued so far: the next request with one gets 401 (IAM mode). */
  expireTokens(): void;
  /** Close the server and every connection, held ones included. */
  close(): Promise<void>;
}

interface StoredFunction extends FunctionSpec {
  namespace: string;
  createdAt: string;
  invocationCount: number;
}

interface ActiveFault {
  fault: Fault;
  remaining: number;
}

const echo: FunctionHandler = (req) => ({
  status: 200,
  body: req.body,
  headers: { 'content-type': req.headers['content-type'] ?? 'text/plain' },
});

function flat(h: IncomingMessage['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** PEM text as is, anything else read as a file path. */
const pem = (v: string): string => (v.includes('-----BEGIN') ? v : readFileSync(v, 'utf8'));

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Start an OpenFaaS-gateway-compatible server on loopback (see GATEWAY.md for the behaviour it mimics). */
export async function startGateway(options: GatewayOptions = {}): Promise<TestGateway> {
  const defaultNs = options.defaultNamespace ?? 'openfaas-fn';
  const namespaced = options.namespaces !== false;
  const fns = new Map<string, StoredFunction>();
  const key = (name: string, ns?: string) => (namespaced ? `${name}.${ns ?? defaultNs}` : name);
  const add = (spec: FunctionSpec) => {
    const namespace = spec.namespace ?? defaultNs;
    fns.set(key(spec.name, namespace), {
      ...spec,
      namespace,
      createdAt: new Date().toISOString(),
      invocationCount: 0,
    });
  };
  for (const f of options.functions ?? []) add(f);

  const requests: RecordedRequest[] = [];
  const faults = new Map<string, ActiveFault>();
  const held = new Map<() => void, string>(); // release function -> fault target
  const sockets = new Set<Socket>();
  let pendingCount = 0;
  const invocationWaiters = new Set<() => void>();
  const expectedAuth = options.credentials
    ? `Basic ${Buffer.from(`${options.credentials.username}:${options.credentials.password}`).toString('base64')}`
    : undefined;

  const takeFault = (target: string): { fault: Fault; target: string } | undefined => {
    for (const k of [target, '*']) {
      const f = faults.get(k);
      if (!f) continue;
      if (f.remaining <= 0) {
        faults.delete(k);
        continue;
      }
      f.remaining--;
      if (f.remaining <= 0) faults.delete(k);
      return { fault: f.fault, target: k };
    }
    return undefined;
  };

  const send = (
    res: ServerResponse,
    rec: RecordedRequest,
    status: number,
    headers: Record<string, string>,
    body?: string | Uint8Array,
  ) => {
    rec.status = status;
    if (res.destroyed) return;
    res.writeHead(status, headers);
    res.end(body);
  };

  const json = (res: ServerResponse, rec: RecordedRequest, status: number, value: unknown) =>
    send(res, rec, status, { 'content-type': 'application/json' }, JSON.stringify(value));

  /** Apply a fault; resolves true when the request was fully handled by it. */
  const applyFault = async (
    found: { fault: Fault; target: string } | undefined,
    res: ServerResponse,
    rec: RecordedRequest,
  ): Promise<boolean> => {
    if (!found) return false;
    const { fault } = found;
    if ('status' in fault) {
      send(
        res,
        rec,
        fault.status,
        { 'x-openfaas-internal': 'proxy', ...(fault.headers ?? {}) },
        fault.body ?? '',
      );
      return true;
    }
    if ('drop' in fault) {
      res.socket?.destroy();
      rec.status = 0;
      return true;
    }
    if ('delay' in fault) {
      await new Promise((r) => setTimeout(r, fault.delay));
      return res.destroyed;
    }
    await new Promise<void>((resolve) => {
      const done = () => {
        held.delete(done);
        resolve();
      };
      held.set(done, found.target);
      res.on('close', done);
    });
    return res.destroyed;
  };

  // OpenFaaS IAM: trusted identity tokens, issued access tokens.
  const iam = options.iam;
  const trusted = new Set(iam?.identityTokens ?? []);
  const tokens: IssuedToken[] = [];
  const valid = (authorization: string | undefined, audience: string): IssuedToken | undefined => {
    const m = /^Bearer (\S+)$/.exec(authorization ?? '');
    const t = m && tokens.find((x) => x.token === m[1]);
    return t && t.audience === audience && t.expiresAt > Date.now() ? t : undefined;
  };
  const unauthorized = (res: ServerResponse, rec: RecordedRequest, why: string) =>
    send(
      res,
      rec,
      401,
      {
        'www-authenticate': `Bearer error="invalid_token", error_description="${why}"`,
        'content-type': 'text/plain',
      },
      `Unauthorized: ${why}\n`,
    );
  /** `POST /oauth/token`: RFC 8693 token exchange, as OpenFaaS IAM answers it. */
  const oauth = (res: ServerResponse, rec: RecordedRequest) => {
    const oauthError = (error: string, description: string) =>
      json(res, rec, 400, { error, error_description: description });
    if (!iam) return send(res, rec, 404, { 'content-type': 'text/plain' }, 'not found\n');
    if (rec.method !== 'POST') return send(res, rec, 405, { 'content-type': 'text/plain' }, 'POST only\n');
    const form = new URLSearchParams(rec.body.toString('utf8'));
    if (form.get('grant_type') !== TOKEN_EXCHANGE)
      return oauthError('unsupported_grant_type', `grant_type must be ${TOKEN_EXCHANGE}`);
    if (form.get('subject_token_type') !== ID_TOKEN_TYPE)
      return oauthError('invalid_request', `subject_token_type must be ${ID_TOKEN_TYPE}`);
    const subject = form.get('subject_token') ?? '';
    const scope = (form.get('scope') ?? '').split(' ').filter(Boolean);
    let audience = 'system';
    if (scope.includes('function')) {
      // A function-scoped token is exchanged for an OpenFaaS access token, as the python-sdk does.
      const aud = form.getAll('audience');
      if (aud.length !== 1 || !/^[^:]+:[^:]+$/.test(aud[0] as string))
        return oauthError('invalid_request', 'scope=function needs one audience namespace:name');
      if (valid(`Bearer ${subject}`, 'system') === undefined)
        return oauthError('invalid_grant', 'subject token is not a valid access token');
      audience = aud[0] as string;
    } else if (!trusted.has(subject)) {
      return oauthError('invalid_grant', 'subject token is not trusted or was revoked');
    }
    const expiresIn = iam.expiresIn ?? 60;
    const issued: IssuedToken = {
      token: `oft_${randomBytes(18).toString('base64url')}`,
      audience,
      expiresAt: Date.now() + expiresIn * 1000,
      subject,
    };
    tokens.push(issued);
    return json(res, rec, 200, {
      access_token: issued.token,
      token_type: 'Bearer',
      expires_in: expiresIn,
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    });
  };

  const system = async (req: IncomingMessage, res: ServerResponse, rec: RecordedRequest, url: URL) => {
    if (iam && valid(req.headers.authorization, 'system') === undefined)
      return unauthorized(res, rec, 'a valid OpenFaaS access token is required');
    if (expectedAuth !== undefined && req.headers.authorization !== expectedAuth) {
      send(
        res,
        rec,
        401,
        { 'www-authenticate': 'Basic realm="Restricted"', 'content-type': 'text/plain' },
        'Unauthorized\n',
      );
      return;
    }
    if (await applyFault(takeFault('system'), res, rec)) return;
    if (url.pathname === '/system/namespaces' && req.method === 'GET') {
      if (!namespaced) return send(res, rec, 404, { 'content-type': 'text/plain' }, 'not found\n');
      const list =
        options.namespaces ?? [...new Set([defaultNs, ...[...fns.values()].map((f) => f.namespace)])].sort();
      return json(res, rec, 200, list);
    }
    if (url.pathname === '/system/functions' && req.method === 'GET') {
      const ns = url.searchParams.get('namespace') ?? defaultNs;
      const known = options.namespaces || [
        ...new Set([defaultNs, ...[...fns.values()].map((f) => f.namespace)]),
      ];
      if (namespaced && !known.includes(ns)) {
        return send(res, rec, 400, { 'content-type': 'text/plain' }, `namespace: ${ns} is not allowed\n`);
      }
      const list = [...fns.values()]
        .filter((f) => !namespaced || f.namespace === ns)
        .map((f) => ({
          name: f.name,
          image: `ghcr.io/openfaas/${f.name}:latest`,
          namespace: f.namespace,
          envProcess: '',
          envVars: {},
          constraints: [],
          secrets: [],
          labels: f.labels ?? null,
          annotations: f.annotations && Object.keys(f.annotations).length > 0 ? f.annotations : null,
          limits: null,
          requests: null,
          readOnlyRootFilesystem: false,
          invocationCount: f.invocationCount,
          replicas: 1,
          availableReplicas: 1,
          createdAt: f.createdAt,
        }));
      return json(res, rec, 200, list);
    }
    send(res, rec, 404, { 'content-type': 'text/plain' }, 'not found\n');
  };

  const runHandler = async (
    fn: StoredFunction,
    freq: FunctionRequest,
  ): Promise<{ status: number; headers: Record<string, string>; body: Uint8Array; seconds: number }> => {
    const started = process.hrtime.bigint();
    fn.invocationCount++;
    let out: FunctionResponse;
    try {
      out = await (fn.handler ?? echo)(freq);
    } catch (err) {
      out = { status: 500, body: `function error: ${(err as Error).message}` };
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const body = typeof out.body === 'string' ? Buffer.from(out.body) : (out.body ?? Buffer.alloc(0));
    return { status: out.status ?? 200, headers: out.headers ?? {}, body, seconds };
  };

  const invoke = async (
    req: IncomingMessage,
    res: ServerResponse,
    rec: RecordedRequest,
    url: URL,
    async: boolean,
  ) => {
    const rest = url.pathname.slice(async ? '/async-function/'.length : '/function/'.length);
    const slash = rest.indexOf('/');
    const target = decodeURIComponent(slash < 0 ? rest : rest.slice(0, slash));
    const subPath = slash < 0 ? '/' : rest.slice(slash);
    const dot = target.indexOf('.');
    const name = dot < 0 ? target : target.slice(0, dot);
    const ns = dot < 0 ? defaultNs : target.slice(dot + 1);
    const address = namespaced ? `${name}.${ns}` : name;
    rec.function = address;
    pendingCount++;
    for (const w of invocationWaiters) w();
    const started = performance.now();
    try {
      if (await applyFault(takeFault(address), res, rec)) return;
      const fn = fns.get(key(name, ns));
      if (fn?.jwtAuth && valid(req.headers.authorization, `${fn.namespace}:${fn.name}`) === undefined)
        return unauthorized(res, rec, `a function token for ${fn.namespace}:${fn.name} is required`);
      const callId = rec.headers['x-call-id'] ?? randomUUID();
      const freq: FunctionRequest = {
        method: req.method ?? 'POST',
        path: subPath,
        query: url.searchParams,
        headers: { ...rec.headers, 'content-type': rec.headers['content-type'] ?? 'text/plain' },
        body: rec.body,
        function: address,
        async,
      };
      if (async) {
        const cb = rec.headers['x-callback-url'];
        if (cb !== undefined) {
          try {
            new URL(cb);
          } catch {
            return send(res, rec, 400, { 'content-type': 'text/plain' }, `invalid X-Callback-Url: ${cb}\n`);
          }
        }
        send(res, rec, 202, { 'x-call-id': callId, 'x-start-time': String(Date.now()) });
        void (async () => {
          const result = fn
            ? await runHandler(fn, freq)
            : { status: 503, headers: {}, body: Buffer.from('function not found'), seconds: 0 };
          if (cb === undefined) return;
          await fetch(cb, {
            method: 'POST',
            headers: {
              ...result.headers,
              'x-call-id': callId,
              'x-function-status': String(result.status),
              'x-function-name': address,
              'x-duration-seconds': result.seconds.toFixed(6),
            },
            body: result.body,
          }).then(
            (r) => r.body?.cancel(),
            () => undefined,
          );
        })();
        return;
      }
      if (!fn) {
        return send(
          res,
          rec,
          404,
          { 'content-type': 'text/plain', 'x-openfaas-internal': 'proxy' },
          `error finding function ${address}\n`,
        );
      }
      const startTime = String(Date.now());
      const result = await runHandler(fn, freq);
      send(
        res,
        rec,
        result.status,
        {
          ...result.headers,
          'x-call-id': callId,
          'x-start-time': startTime,
          'x-duration-seconds': result.seconds.toFixed(6),
        },
        result.body,
      );
    } finally {
      pendingCount--;
      const topic = rec.headers['x-topic'];
      options.onCall?.({
        function: address,
        async,
        ...(topic === undefined ? {} : { topic }),
        status: rec.status ?? 0,
        bytes: rec.body.length,
        ms: performance.now() - started,
      });
    }
  };

  const listener: RequestListener = (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://gateway');
      const body = await readBody(req);
      const rec: RecordedRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: flat(req.headers),
        body,
        async: url.pathname.startsWith('/async-function/'),
        at: Date.now(),
      };
      requests.push(rec);
      if (url.pathname === '/healthz') return send(res, rec, 200, { 'content-type': 'text/plain' }, 'OK');
      if (url.pathname === '/oauth/token') return oauth(res, rec);
      if (url.pathname.startsWith('/system/')) return system(req, res, rec, url);
      if (url.pathname.startsWith('/function/')) return invoke(req, res, rec, url, false);
      if (url.pathname.startsWith('/async-function/')) return invoke(req, res, rec, url, true);
      send(res, rec, 404, { 'content-type': 'text/plain' }, 'not found\n');
    })().catch((err: unknown) => {
      if (!res.headersSent && !res.destroyed) res.writeHead(500).end(String(err));
    });
  };
  const tls = options.tls;
  const server = tls
    ? createHttpsServer(
        {
          cert: pem(tls.cert),
          key: pem(tls.key),
          ...(tls.ca === undefined ? {} : { ca: pem(tls.ca) }),
          requestCert: tls.requestCert ?? false,
          rejectUnauthorized: tls.requestCert ?? false,
        },
        listener,
      )
    : createServer(listener);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host ?? '127.0.0.1';

  const invocations = (fn?: string) => {
    const want = fn === undefined ? undefined : fn.includes('.') || !namespaced ? fn : `${fn}.${defaultNs}`;
    return requests.filter((r) => r.function !== undefined && (want === undefined || r.function === want));
  };

  return {
    url: `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    requests,
    invocations,
    addFunction: add,
    removeFunction(name, namespace) {
      fns.delete(key(name, namespace));
    },
    updateFunction(name, patch, namespace) {
      const f = fns.get(key(name, namespace));
      if (!f) throw new Error(`no function ${key(name, namespace)}`);
      Object.assign(f, patch);
    },
    fault(target, fault) {
      const t =
        target === '*' || target === 'system' || target.includes('.') || !namespaced
          ? target
          : `${target}.${defaultNs}`;
      if (fault === null) {
        faults.delete(t);
        // Requests held by a cleared hang fault are answered normally now.
        for (const [done, target] of [...held]) if (target === t) done();
        return;
      }
      faults.set(t, { fault, remaining: fault.times ?? Number.POSITIVE_INFINITY });
    },
    release() {
      for (const [k, f] of faults) if ('hang' in f.fault) faults.delete(k);
      for (const done of [...held.keys()]) done();
    },
    pending: () => pendingCount,
    waitForInvocations(count, opts = {}) {
      const check = () => invocations(opts.fn);
      if (check().length >= count) return Promise.resolve(check());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          invocationWaiters.delete(w);
          reject(
            new Error(
              `expected ${count} invocations${opts.fn ? ` of ${opts.fn}` : ''} within ${opts.timeout ?? 10_000} ms, got ${check().length}`,
            ),
          );
        }, opts.timeout ?? 10_000);
        const w = () => {
          // Called on arrival, before the request is recorded as a function call: check on the next tick.
          setImmediate(() => {
            if (check().length >= count && invocationWaiters.delete(w)) {
              clearTimeout(timer);
              resolve(check());
            }
          });
        };
        invocationWaiters.add(w);
      });
    },
    tokens,
    trustIdentity(token) {
      trusted.add(token);
    },
    revokeIdentity(token) {
      trusted.delete(token);
      const revoked = new Set<string>();
      for (const t of tokens) {
        if (t.subject === token || revoked.has(t.subject)) {
          t.expiresAt = 0;
          revoked.add(t.token);
        }
      }
    },
    expireTokens() {
      for (const t of tokens) t.expiresAt = 0;
    },
    async close() {
      for (const done of [...held.keys()]) done();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
