import type { ControllerOptions, TopicMatcherOption } from './config.js';
import { ConfigError, type ConnectorError, GatewayError, InvokeError } from './errors.js';
import { EMPTY_BODY, flattenHeaders, GatewayClient } from './gateway.js';
import { copyMessageHeaders } from './headers.js';
import { noopLogger } from './logger.js';
import { createResponsePrinter } from './printer.js';
import { parseTopics, TopicMap } from './topic-map.js';
import type { FunctionInfo, InvokeOptions, InvokeResult, Logger, ResponseSubscriber } from './types.js';

/** What the controller knows about its topic map. */
export interface ControllerStatus {
  /** At least one rebuild succeeded. */
  readonly synced: boolean;
  /** Time (ms since epoch) of the last successful rebuild. */
  readonly lastSyncAt: number | undefined;
  /** Message of the last failed rebuild, cleared by a success. */
  readonly lastError: string | undefined;
  /** Rebuilds failed in a row. */
  readonly consecutiveFailures: number;
  /** Functions in the map. */
  readonly functions: number;
  /** Distinct topics in the map. */
  readonly topics: number;
}

/** Discovers functions through the gateway and invokes them by topic or by name. */
export interface Controller {
  /** Resolved options (defaults applied). */
  readonly options: Readonly<ResolvedControllerOptions>;
  /** First topic-map sync, then a rebuild every `rebuildInterval`. Never rejects because the gateway is down. */
  start(): Promise<void>;
  /** Stop rebuilding and close connections. */
  stop(): Promise<void>;
  /** Fail every invocation in flight at once (a hard stop); the controller invokes nothing afterwards. */
  abort(): void;
  /** Receive every invocation result; returns the unsubscribe function. */
  subscribe(subscriber: ResponseSubscriber | ((result: InvokeResult) => void)): () => void;
  /** Invoke every function subscribed to `topic`; one result per function (none when nothing matches). */
  invoke(topic: string, body: Uint8Array | string, options?: InvokeOptions): Promise<InvokeResult[]>;
  /** Invoke one function by `name` or `name.namespace`, whatever its topics. */
  invokeFunction(
    name: string,
    body: Uint8Array | string,
    options?: InvokeOptions & { topic?: string },
  ): Promise<InvokeResult>;
  /** One attempt against one function, without notifying subscribers (the delivery engine's building block). */
  invokeOnce(
    fn: FunctionInfo | string,
    topic: string,
    body: Uint8Array | string,
    options?: InvokeOptions,
  ): Promise<InvokeResult>;
  /** Hand a result to every subscriber (a throwing subscriber is logged and skipped). */
  publish(result: InvokeResult): void;
  /** Topics the functions subscribe to. */
  topics(): readonly string[];
  /** Functions in the current map. */
  functions(): readonly FunctionInfo[];
  /** Functions subscribed to `topic`. */
  match(topic: string): readonly FunctionInfo[];
  /** Resolve a name or address to a function of the map (or a synthetic one outside it). */
  resolve(name: string): FunctionInfo | undefined;
  /** Rebuild the topic map now; rejects with a GatewayError when the gateway fails (the last good map stays). */
  refresh(): Promise<void>;
  /** Called after a rebuild that changed the map; returns the unsubscribe function. */
  onChange(listener: () => void): () => void;
  /** True once the map has been built at least once. */
  synced(): boolean;
  /** Resolves after the first successful sync (or rejects when `signal` aborts). */
  ready(signal?: AbortSignal): Promise<void>;
  /** Sync state, for readiness and metrics. */
  status(): ControllerStatus;
}

/** Controller options with every default filled in. */
export interface ResolvedControllerOptions {
  gatewayUrl: string;
  upstreamTimeout: number;
  rebuildInterval: number;
  topicDelimiter: string;
  asyncInvocation: boolean;
  asyncCallbackUrl: string | undefined;
  contentType: string | undefined;
  userAgent: string;
  connectorName: string;
  namespace: string | undefined;
  sendTopic: boolean;
  topicMatcher: TopicMatcherOption;
  printResponse: boolean;
  printResponseBody: boolean;
  printRequestBody: boolean;
  printSync: boolean;
  hasCredentials: boolean;
}

function validate(o: ControllerOptions): void {
  let url: URL;
  try {
    url = new URL(o.gatewayUrl);
  } catch {
    throw new ConfigError(
      'gatewayUrl',
      `invalid gatewayUrl=${JSON.stringify(o.gatewayUrl)}: expected a URL like http://gateway:8080`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(
      'gatewayUrl',
      `invalid gatewayUrl=${JSON.stringify(o.gatewayUrl)}: expected an http or https URL`,
    );
  }
  const positive = (name: keyof ControllerOptions, v: number | undefined) => {
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) {
      throw new ConfigError(name, `invalid ${name}=${v}: expected a positive number of milliseconds`);
    }
  };
  positive('upstreamTimeout', o.upstreamTimeout);
  positive('rebuildInterval', o.rebuildInterval);
  if (o.topicDelimiter === '')
    throw new ConfigError('topicDelimiter', 'invalid topicDelimiter="": expected a non-empty separator');
  if (o.asyncCallbackUrl !== undefined) {
    try {
      new URL(o.asyncCallbackUrl);
    } catch {
      throw new ConfigError(
        'asyncCallbackUrl',
        `invalid asyncCallbackUrl=${JSON.stringify(o.asyncCallbackUrl)}: expected a URL`,
      );
    }
  }
  const m = o.topicMatcher;
  if (m !== undefined && m !== 'exact' && m !== 'mqtt' && typeof m !== 'function') {
    throw new ConfigError(
      'topicMatcher',
      `invalid topicMatcher=${JSON.stringify(m)}: expected exact, mqtt or a function`,
    );
  }
}

const encoder = new TextEncoder();

function toInfo(
  name: string,
  namespace: string,
  annotations: Record<string, string>,
  delimiter: string,
): FunctionInfo {
  return Object.freeze({
    name,
    namespace,
    address: namespace === '' ? name : `${name}.${namespace}`,
    topics: Object.freeze(parseTopics(annotations['topic'], delimiter)),
    annotations: Object.freeze(annotations),
  });
}

function signature(fns: readonly FunctionInfo[]): string {
  return JSON.stringify(fns.map((f) => [f.address, f.annotations]));
}

function classify(status: number, async: boolean, fn: string): ConnectorError | undefined {
  if (async ? status === 202 || (status >= 200 && status < 300) : status >= 200 && status < 300)
    return undefined;
  if (status === 404) return new InvokeError('ERR_FUNCTION_NOT_FOUND', `function ${fn} not found (404)`, 404);
  return new InvokeError('ERR_INVOKE_STATUS', `function ${fn} answered ${status}`, status);
}

function errorOf(err: unknown, fn: string, signal: AbortSignal | undefined): InvokeError {
  const code = (err as { code?: string }).code;
  if (signal?.aborted || (err as Error).name === 'AbortError' || code === 'UND_ERR_ABORTED') {
    return new InvokeError('ERR_ABORTED', `invocation of ${fn} aborted`, undefined, { cause: err });
  }
  if (
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT'
  ) {
    return new InvokeError('ERR_TIMEOUT', `invocation of ${fn} timed out`, undefined, { cause: err });
  }
  return new InvokeError('ERR_NETWORK', `invocation of ${fn} failed: ${(err as Error).message}`, undefined, {
    cause: err,
  });
}

/** Create a controller for one gateway. Throws ConfigError on invalid options. */
export function createController(options: ControllerOptions & { logger?: Logger }): Controller {
  validate(options);
  const connectorName = options.connectorName ?? 'connector';
  const o: ResolvedControllerOptions = {
    gatewayUrl: options.gatewayUrl,
    upstreamTimeout: options.upstreamTimeout ?? 30_000,
    rebuildInterval: options.rebuildInterval ?? 30_000,
    topicDelimiter: options.topicDelimiter ?? ',',
    asyncInvocation: options.asyncInvocation ?? false,
    asyncCallbackUrl: options.asyncCallbackUrl,
    contentType: options.contentType,
    userAgent: options.userAgent ?? `connector/${connectorName}`,
    connectorName,
    namespace: options.namespace,
    sendTopic: options.sendTopic ?? true,
    topicMatcher: options.topicMatcher ?? 'exact',
    printResponse: options.printResponse ?? false,
    printResponseBody: options.printResponseBody ?? false,
    printRequestBody: options.printRequestBody ?? false,
    printSync: options.printSync ?? false,
    hasCredentials: options.credentials !== undefined,
  };
  const log = (options.logger ?? noopLogger).child({ component: 'controller' });
  const client = new GatewayClient({
    gatewayUrl: o.gatewayUrl,
    credentials: options.credentials,
    userAgent: o.userAgent,
    timeout: o.upstreamTimeout,
    ...(options.connections === undefined ? {} : { connections: options.connections }),
  });
  const fnPrefix = `${client.prefix}/function/`;
  const asyncPrefix = `${client.prefix}/async-function/`;

  let map = new TopicMap([], o.topicMatcher);
  let mapSig = signature([]);
  let lastSyncAt: number | undefined;
  let lastError: string | undefined;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let inflightRefresh: Promise<void> | undefined;
  const subscribers: ResponseSubscriber[] = [];
  const changeListeners = new Set<() => void>();
  const readyWaiters = new Set<() => void>();

  const subscribe = (s: ResponseSubscriber | ((r: InvokeResult) => void)) => {
    const sub: ResponseSubscriber = typeof s === 'function' ? { response: s } : s;
    subscribers.push(sub);
    return () => {
      const i = subscribers.indexOf(sub);
      if (i >= 0) subscribers.splice(i, 1);
    };
  };
  if (o.printResponse) subscribe(createResponsePrinter({ logger: log, printBody: o.printResponseBody }));

  const publish = (result: InvokeResult) => {
    for (let i = 0; i < subscribers.length; i++) {
      try {
        (subscribers[i] as ResponseSubscriber).response(result);
      } catch (err) {
        log.error({ err, function: result.function }, 'response subscriber threw; ignored');
      }
    }
  };

  const rebuild = async (): Promise<void> => {
    const fns: FunctionInfo[] = [];
    const add = (list: Awaited<ReturnType<GatewayClient['functions']>>, ns: string) => {
      for (const f of list) fns.push(toInfo(f.name, ns, { ...(f.annotations ?? {}) }, o.topicDelimiter));
    };
    if (o.namespace !== undefined) add(await client.functions(o.namespace), o.namespace);
    else {
      const namespaces = await client.namespaces();
      if (namespaces === undefined) add(await client.functions(), '');
      else {
        const lists = await Promise.all(namespaces.map((ns) => client.functions(ns)));
        for (const [i, list] of lists.entries()) add(list, namespaces[i] as string);
      }
    }
    fns.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
    const sig = signature(fns);
    const wasSynced = lastSyncAt !== undefined;
    lastSyncAt = Date.now();
    if (lastError !== undefined)
      log.info({ functions: fns.length }, 'topic map rebuilt again after failures');
    lastError = undefined;
    failures = 0;
    if (o.printSync)
      log.info(
        { functions: fns.map((f) => ({ function: f.address, topics: f.topics })) },
        'topic map synced',
      );
    if (sig !== mapSig || !wasSynced) {
      map = new TopicMap(fns, o.topicMatcher);
      mapSig = sig;
      log.debug({ functions: fns.length, topics: map.topics().length }, 'topic map changed');
      for (const l of changeListeners) {
        try {
          l();
        } catch (err) {
          log.error({ err }, 'topic map listener threw; ignored');
        }
      }
    }
    for (const w of readyWaiters) w();
    readyWaiters.clear();
  };

  const refresh = (): Promise<void> => {
    inflightRefresh ??= rebuild()
      .catch((err: unknown) => {
        failures++;
        lastError = (err as Error).message;
        throw err instanceof GatewayError
          ? err
          : new GatewayError('ERR_GATEWAY_UNREACHABLE', lastError, undefined, { cause: err });
      })
      .finally(() => {
        inflightRefresh = undefined;
      });
    return inflightRefresh;
  };

  const schedule = () => {
    if (!running) return;
    // After failures retry sooner (1 s, 2 s, 4 s ... capped by the rebuild interval); never exit.
    const delay =
      failures === 0
        ? o.rebuildInterval
        : Math.min(o.rebuildInterval, 1000 * 2 ** Math.min(failures - 1, 10));
    timer = setTimeout(tick, delay);
    timer.unref();
  };
  const tick = () => {
    refresh()
      .catch((err: unknown) => {
        log.warn(
          { err: (err as Error).message, failures },
          'topic map rebuild failed; keeping the last good map',
        );
      })
      .finally(schedule);
  };

  const synthetic = (name: string): FunctionInfo => {
    const dot = name.indexOf('.');
    const bare = dot < 0 ? name : name.slice(0, dot);
    const ns = dot < 0 ? (o.namespace ?? '') : name.slice(dot + 1);
    return toInfo(bare, ns, {}, o.topicDelimiter);
  };

  const resolve = (name: string): FunctionInfo | undefined => {
    const fns = map.functions;
    if (name.includes('.')) {
      const found = fns.find((f) => f.address === name);
      if (found) return found;
      const fn = synthetic(name);
      return o.namespace !== undefined && fn.namespace !== o.namespace ? undefined : fn;
    }
    const byName = fns.filter((f) => f.name === name);
    if (byName.length === 1) return byName[0];
    if (o.namespace !== undefined) return byName.find((f) => f.namespace === o.namespace) ?? synthetic(name);
    return byName.find((f) => f.namespace === 'openfaas-fn') ?? byName[0] ?? synthetic(name);
  };

  const invokeOnce = async (
    target: FunctionInfo | string,
    topic: string,
    body: Uint8Array | string,
    opts?: InvokeOptions,
  ): Promise<InvokeResult> => {
    const fn = typeof target === 'string' ? target : target.address;
    const async = opts?.async ?? o.asyncInvocation;
    const headers: Record<string, string> = {};
    if (opts?.headers) copyMessageHeaders(opts.headers, headers);
    const contentType = opts?.contentType ?? o.contentType;
    if (contentType !== undefined) headers['content-type'] = contentType;
    headers['user-agent'] = o.userAgent;
    headers['x-connector'] = o.connectorName;
    if (o.sendTopic && topic !== '') headers['x-topic'] = topic;
    if (async) {
      const cb = opts?.callbackUrl ?? o.asyncCallbackUrl;
      if (cb !== undefined) headers['x-callback-url'] = cb;
    }
    const payload = typeof body === 'string' ? encoder.encode(body) : body;
    if (o.printRequestBody)
      log.info({ function: fn, topic, body: Buffer.from(payload).toString('utf8') }, 'request body');
    const signal = opts?.signal;
    const started = performance.now();
    const attempt = opts?.attempt ?? 1;
    try {
      const res = await client.pool.request({
        path: (async ? asyncPrefix : fnPrefix) + fn,
        method: 'POST',
        headers,
        body: payload,
        ...(signal ? { signal } : {}),
      });
      let resBody = EMPTY_BODY;
      if (async) await res.body.dump();
      else resBody = new Uint8Array(await res.body.arrayBuffer());
      const resHeaders = flattenHeaders(res.headers);
      const error = classify(res.statusCode, async, fn);
      const callId = resHeaders['x-call-id'];
      const result: { -readonly [K in keyof InvokeResult]: InvokeResult[K] } = {
        topic,
        function: fn,
        status: res.statusCode,
        headers: resHeaders,
        body: resBody,
        duration: performance.now() - started,
        async,
        attempt,
        final: true,
      };
      if (error) result.error = error;
      if (callId !== undefined) result.callId = callId;
      return result;
    } catch (err) {
      return {
        topic,
        function: fn,
        status: 0,
        headers: {},
        body: EMPTY_BODY,
        duration: performance.now() - started,
        error: errorOf(err, fn, signal),
        async,
        attempt,
        final: true,
      };
    }
  };

  const notFound = (topic: string, name: string, async: boolean): InvokeResult => ({
    topic,
    function: name,
    status: 0,
    headers: {},
    body: EMPTY_BODY,
    duration: 0,
    error: new InvokeError('ERR_FUNCTION_NOT_FOUND', `function ${name} is outside namespace ${o.namespace}`),
    async,
    attempt: 1,
    final: true,
  });

  return {
    options: o,
    async start() {
      if (running) return;
      running = true;
      try {
        await refresh();
        log.info(
          { functions: map.size, topics: map.topics().length, gateway: o.gatewayUrl },
          'topic map synced',
        );
      } catch (err) {
        log.warn(
          { err: (err as Error).message, gateway: o.gatewayUrl },
          'gateway not reachable at start; retrying in the background',
        );
      }
      schedule();
    },
    async stop() {
      running = false;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await inflightRefresh?.catch(() => undefined);
      await client.close();
    },
    abort() {
      running = false;
      if (timer) clearTimeout(timer);
      timer = undefined;
      client.destroy();
    },
    subscribe,
    async invoke(topic, body, opts) {
      const fns = map.match(topic);
      if (fns.length === 0) return [];
      if (fns.length === 1) {
        const only = await invokeOnce(fns[0] as FunctionInfo, topic, body, opts);
        publish(only);
        return [only];
      }
      const results = await Promise.all(fns.map((f) => invokeOnce(f, topic, body, opts)));
      for (const r of results) publish(r);
      return results;
    },
    async invokeFunction(name, body, opts) {
      const fn = resolve(name);
      const result = fn
        ? await invokeOnce(fn, opts?.topic ?? '', body, opts)
        : notFound(opts?.topic ?? '', name, opts?.async ?? o.asyncInvocation);
      publish(result);
      return result;
    },
    invokeOnce,
    publish,
    topics: () => map.topics(),
    functions: () => map.functions,
    match: (topic) => map.match(topic),
    resolve,
    refresh,
    onChange(listener) {
      changeListeners.add(listener);
      return () => changeListeners.delete(listener);
    },
    synced: () => lastSyncAt !== undefined,
    ready(signal) {
      if (lastSyncAt !== undefined) return Promise.resolve();
      return new Promise<void>((res, rej) => {
        const done = () => {
          signal?.removeEventListener('abort', abort);
          res();
        };
        const abort = () => {
          readyWaiters.delete(done);
          rej(signal?.reason ?? new Error('aborted'));
        };
        if (signal?.aborted) return abort();
        readyWaiters.add(done);
        signal?.addEventListener('abort', abort, { once: true });
      });
    },
    status: () => ({
      synced: lastSyncAt !== undefined,
      lastSyncAt,
      lastError,
      consecutiveFailures: failures,
      functions: map.size,
      topics: map.topics().length,
    }),
  };
}

export { encoder as utf8Encoder };
