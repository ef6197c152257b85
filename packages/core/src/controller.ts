import { type ControllerOptions, checkOptionKeys, type TopicMatcherOption } from './config.js';
import { ConfigError, GatewayError, InvokeError } from './errors.js';
import { type FunctionStatus, listFunctions, listNamespaces } from './gateway.js';
import { createInvoker, type Invoker } from './invoker.js';
import { noopLogger } from './logger.js';
import { createResponsePrinter } from './printer.js';
import { ResponseHub } from './responses.js';
import { parseTopics, TopicMap } from './topic-map.js';
import type { FunctionInfo, InvokeOptions, InvokeResult, Logger, ResponseSubscriber } from './types.js';

/** Default `maxTopicMapEntries`: function × topic pairs the topic map holds at most. */
export const DEFAULT_MAX_TOPIC_MAP_ENTRIES = 100_000;

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

/**
 * Discovers functions through the gateway (the topic map) — and, for Go connector-sdk parity, invokes them by topic
 * or by name through the same invoker the delivery engine uses. Retries, ordering and acks are the engine's.
 */
export interface Controller {
  /** Resolved options (defaults applied). */
  readonly options: Readonly<ResolvedControllerOptions>;
  /** The HTTP side: every request to the gateway goes through it. */
  readonly invoker: Invoker;
  /** Response subscribers: every invocation result (engine or parity API) is published here. */
  readonly responses: ResponseHub;
  /** First topic-map sync, then a rebuild every `rebuildInterval`. Never rejects because the gateway is down. */
  start(): Promise<void>;
  /** Stop rebuilding and close connections (never waits on a request past its deadline). */
  stop(): Promise<void>;
  /** Receive every invocation result; returns the unsubscribe function. */
  subscribe(subscriber: ResponseSubscriber | ((result: InvokeResult) => void)): () => void;
  /** Invoke every function subscribed to `topic` once (no retries); one result per function. */
  invoke(topic: string, body: Uint8Array | string, options?: InvokeOptions): Promise<InvokeResult[]>;
  /** Invoke one function by `name` or `name.namespace`, whatever its topics (no retries). */
  invokeFunction(
    name: string,
    body: Uint8Array | string,
    options?: InvokeOptions & { topic?: string },
  ): Promise<InvokeResult>;
  /** Topics the functions subscribe to. */
  topics(): readonly string[];
  /** Functions in the current map. */
  functions(): readonly FunctionInfo[];
  /** Functions subscribed to `topic`. */
  match(topic: string): readonly FunctionInfo[];
  /** Subscription patterns (annotation topics) that match `topic`: what metrics label a message by. */
  subscriptions(topic: string): readonly string[];
  /** Resolve a name or address to a function of the map (or a synthetic one); undefined when outside the namespace. */
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
  systemTimeout: number;
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
}

function validate(o: ControllerOptions): void {
  const positive = (name: keyof ControllerOptions, v: number | undefined) => {
    if (v !== undefined && !(Number.isFinite(v) && v > 0))
      throw ConfigError.invalid(name, v, 'a positive number of milliseconds');
  };
  positive('upstreamTimeout', o.upstreamTimeout);
  positive('rebuildInterval', o.rebuildInterval);
  positive('systemTimeout', o.systemTimeout);
  const cap = o.maxTopicMapEntries;
  if (cap !== undefined && !(Number.isSafeInteger(cap) && cap >= 1))
    throw ConfigError.invalid('maxTopicMapEntries', cap, 'an integer >= 1');
  if (o.topicDelimiter === '') throw ConfigError.invalid('topicDelimiter', '', 'a non-empty separator');
  const m = o.topicMatcher;
  if (m !== undefined && m !== 'exact' && m !== 'mqtt' && typeof m !== 'function')
    throw ConfigError.invalid('topicMatcher', m, 'exact, mqtt or a function');
}

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

/** Create a controller for one gateway. Throws ConfigError on invalid options. */
export function createController(options: ControllerOptions & { logger?: Logger }): Controller {
  checkOptionKeys('createController', options);
  validate(options);
  const connectorName = options.connectorName ?? 'connector';
  const upstreamTimeout = options.upstreamTimeout ?? 30_000;
  const o: ResolvedControllerOptions = {
    gatewayUrl: options.gatewayUrl,
    upstreamTimeout,
    systemTimeout: options.systemTimeout ?? Math.min(upstreamTimeout, 30_000),
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
  };
  const log = (options.logger ?? noopLogger).child({ component: 'controller' });
  const invoker = createInvoker({
    gatewayUrl: o.gatewayUrl,
    credentials: options.credentials,
    gatewayCaFile: options.gatewayCaFile,
    gatewayCertFile: options.gatewayCertFile,
    gatewayKeyFile: options.gatewayKeyFile,
    gatewayTlsInsecure: options.gatewayTlsInsecure,
    gatewayTokenFile: options.gatewayTokenFile,
    gatewayTokenExchange: options.gatewayTokenExchange,
    gatewayFunctionAuth: options.gatewayFunctionAuth,
    userAgent: o.userAgent,
    connectorName: o.connectorName,
    timeout: o.upstreamTimeout,
    systemTimeout: o.systemTimeout,
    connections: options.connections,
    sendTopic: o.sendTopic,
    contentType: o.contentType,
    asyncInvocation: o.asyncInvocation,
    asyncCallbackUrl: o.asyncCallbackUrl,
    maxResponseBytes: options.maxResponseBytes,
    cloudEvents: options.cloudEvents,
    cloudEventsType: options.cloudEventsType,
    printRequestBody: o.printRequestBody,
    logger: options.logger,
  });
  const responses = new ResponseHub(log);
  if (o.printResponse)
    responses.subscribe(createResponsePrinter({ logger: log, printBody: o.printResponseBody }));

  let map = new TopicMap([], o.topicMatcher);
  let mapSig = signature([]);
  let lastSyncAt: number | undefined;
  let lastError: string | undefined;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let inflightRefresh: Promise<void> | undefined;
  const changeListeners = new Set<() => void>();
  const readyWaiters = new Set<() => void>();
  const warned = new Set<string>(); // "function/value" of bad annotations already warned about

  /** One function entry → FunctionInfo; a bad entry is skipped with one warning (per function and value). */
  const entry = (f: FunctionStatus, ns: string): FunctionInfo | undefined => {
    const raw = f.annotations ?? {};
    const annotations: Record<string, string> = {};
    for (const k in raw) {
      const v = raw[k];
      if (typeof v === 'string') annotations[k] = v;
      else if (k === 'topic' && v !== undefined && v !== null) {
        const key = `${f.name}.${ns}\u0000${JSON.stringify(v)}`;
        if (!warned.has(key)) {
          warned.add(key);
          log.warn(
            { function: ns === '' ? f.name : `${f.name}.${ns}`, topic: JSON.stringify(v).slice(0, 200) },
            'function skipped: its topic annotation is not a string',
          );
        }
        return undefined;
      }
    }
    return toInfo(f.name, ns, annotations, o.topicDelimiter);
  };

  /** Keep the map within `maxTopicMapEntries` function × topic pairs: the functions past it (by address) are
   * dropped, with one warning until a rebuild fits again. */
  const maxEntries = options.maxTopicMapEntries ?? DEFAULT_MAX_TOPIC_MAP_ENTRIES;
  let capWarned = false;
  const capEntries = (fns: FunctionInfo[]): void => {
    let entries = 0;
    const cut = fns.findIndex((f) => (entries += f.topics.length) > maxEntries);
    if (cut < 0) {
      capWarned = false;
      return;
    }
    const skipped = fns.splice(cut);
    if (capWarned) return;
    capWarned = true;
    log.warn(
      { maxTopicMapEntries: maxEntries, skipped: skipped.length, first: skipped[0]?.address },
      `topic map over max_topic_map_entries (${maxEntries} function x topic pairs): ${skipped.length} functions skipped`,
    );
  };

  const rebuild = async (): Promise<void> => {
    const fns: FunctionInfo[] = [];
    const add = (list: FunctionStatus[], ns: string) => {
      for (const f of list) {
        const info = entry(f, ns);
        if (info) fns.push(info);
      }
    };
    if (o.namespace !== undefined) add(await listFunctions(invoker, o.namespace), o.namespace);
    else {
      const namespaces = await listNamespaces(invoker);
      if (namespaces === undefined) add(await listFunctions(invoker), '');
      else {
        const lists = await Promise.all(namespaces.map((ns) => listFunctions(invoker, ns)));
        for (const [i, list] of lists.entries()) add(list, namespaces[i] as string);
      }
    }
    fns.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
    capEntries(fns);
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
    // After failures retry sooner (1 s, 2 s, 4 s ... capped by the rebuild interval); never exit. The timer keeps
    // the process alive: a connector runs until it is stopped, even with nothing to do yet.
    const delay =
      failures === 0
        ? o.rebuildInterval
        : Math.min(o.rebuildInterval, 1000 * 2 ** Math.min(failures - 1, 10));
    timer = setTimeout(tick, delay);
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

  const outside = (name: string, topic: string, async: boolean) =>
    invoker.failed(
      name,
      topic,
      new InvokeError('ERR_FUNCTION_NOT_FOUND', `function ${name} is outside namespace ${o.namespace}`),
      1,
      async,
    );

  return {
    options: o,
    invoker,
    responses,
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
      // A refresh in flight ends by its deadline (systemTimeout) at the latest.
      await inflightRefresh?.catch(() => undefined);
      await invoker.close();
    },
    subscribe: (s) => responses.subscribe(s),
    async invoke(topic, body, opts) {
      const fns = map.match(topic);
      if (fns.length === 0) return [];
      const results = await Promise.all(fns.map((f) => invoker.invoke(f, topic, body, opts)));
      for (const r of results) responses.publish(r);
      return results;
    },
    async invokeFunction(name, body, opts) {
      const fn = resolve(name);
      const topic = opts?.topic ?? '';
      const result = fn
        ? await invoker.invoke(fn, topic, body, opts)
        : outside(name, topic, opts?.async ?? o.asyncInvocation);
      responses.publish(result);
      return result;
    },
    topics: () => map.topics(),
    functions: () => map.functions,
    match: (topic) => map.match(topic),
    subscriptions: (topic) => map.subscriptions(topic),
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
