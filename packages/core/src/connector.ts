import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { backlogGauge, DEFAULT_BACKLOG_INTERVAL, sampleBacklog } from './backlog.js';
import { checkOptionKeys, type DeliveryOptions, type OPTION_KEYS } from './config.js';
import type { Controller } from './controller.js';
import {
  checkDeadLetterFile,
  type DeadLetterHandler,
  fileDeadLetters,
  logDeadLetters,
} from './dead-letters.js';
import { DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_RETRY, DeliveryEngine } from './engine.js';
import { ConfigError, isShutdownError } from './errors.js';
import { errorFields, noopLogger, RepeatLimiter } from './logger.js';
import { ConnectorMetrics } from './metrics.js';
import { redactSecrets } from './secrets.js';
import type { Source, SourceContext, SourceHealth } from './source.js';
import type { FunctionInfo, Logger } from './types.js';

/** Options of `createConnector`. */
export interface ConnectorOptions extends DeliveryOptions {
  /** The controller (the connector starts and stops it). */
  controller: Controller;
  /** The message source. */
  source: Source;
  /** Custom dead-letter handler (default: log; plus `deadLetterFile` when set). */
  deadLetter?: DeadLetterHandler;
  /** /healthz /readyz /metrics server (`port: 0` = ephemeral); false or absent = none. */
  http?: { port: number; host?: string } | false;
  /** Logger (default: none). */
  logger?: Logger;
  /** prom-client registry to register metrics in (default: a new one). */
  registry?: Registry;
  /** Source restart back-off after a failure, in ms (default 1 s doubling to 30 s). */
  restartDelay?: { min: number; max: number };
}

/** A running connector: controller + delivery engine + source + health/metrics endpoint. */
export interface Connector {
  /** Sync the topic map (never fails on a down gateway), start the HTTP endpoint, then the source. */
  start(): Promise<void>;
  /** Graceful stop: refuse new messages, drain in-flight up to `drainTimeout`, stop source and controller. */
  stop(): Promise<void>;
  /** Crash-like stop for tests: abort in-flight work at once (nothing more is acked), then close. */
  kill(): Promise<void>;
  /** Invocations in flight now. */
  inFlight(): number;
  /** Deliveries accepted and not yet settled. */
  pending(): number;
  /** True when the map is synced recently and the source is connected. */
  ready(): boolean;
  /** Why the connector is not ready (empty when ready). */
  readiness(): string[];
  /** The metrics registry (Prometheus). */
  readonly metrics: Registry;
  /** Base URL of the HTTP endpoint once started, e.g. `http://127.0.0.1:8081`. */
  readonly httpUrl: string | undefined;
}

function checkPositive(name: string, v: number | undefined, integer = false): void {
  if (v === undefined) return;
  if (!Number.isFinite(v) || v < (integer ? 1 : 0) || (integer && !Number.isInteger(v)))
    throw ConfigError.invalid(name, v, integer ? 'an integer >= 1' : 'a number >= 0');
}

/** Compose a controller and a source into a connector. Throws ConfigError on invalid options. */
export function createConnector(options: ConnectorOptions): Connector {
  checkOptionKeys('createConnector', options);
  const { controller, source } = options;
  checkPositive('maxInFlight', options.maxInFlight, true);
  checkPositive('maxInFlightPerFunction', options.maxInFlightPerFunction, true);
  checkPositive('drainTimeout', options.drainTimeout);
  checkPositive('maxPendingBytes', options.maxPendingBytes, true);
  checkPositive('maxMessageBytes', options.maxMessageBytes, true);
  checkPositive('backlogInterval', options.backlogInterval);
  checkPositive('retry.maxRetries', options.retry?.maxRetries);
  checkPositive('retry.minDelay', options.retry?.minDelay);
  checkPositive('retry.maxDelay', options.retry?.maxDelay);
  if (
    options.onFailure !== undefined &&
    options.onFailure !== 'dead-letter' &&
    options.onFailure !== 'redeliver'
  ) {
    throw ConfigError.invalid('onFailure', options.onFailure, 'dead-letter or redeliver');
  }
  const log = (options.logger ?? noopLogger).child({ source: source.name });
  const drainTimeout = options.drainTimeout ?? 30_000;
  const restartMin = options.restartDelay?.min ?? 1000;
  const restartMax = options.restartDelay?.max ?? 30_000;

  const handlers: DeadLetterHandler[] = [logDeadLetters(log, controller.options.printRequestBody)];
  if (options.deadLetterFile !== undefined) handlers.push(fileDeadLetters(options.deadLetterFile));
  if (options.deadLetter) handlers.push(options.deadLetter);
  let deadLetterError: string | undefined; // the last failed dead-letter write, until one succeeds: not ready
  const deadLetter: DeadLetterHandler = async (l) => {
    try {
      for (const h of handlers) await h(l);
      deadLetterError = undefined;
    } catch (err) {
      deadLetterError = (err as Error)?.message ?? String(err);
      throw err;
    }
  };

  let engine: DeliveryEngine;
  let lastSourceError: string | undefined;
  const sourceHealth = (): SourceHealth => {
    const h = source.health?.();
    if (h) return h;
    return lastSourceError === undefined
      ? { connected: running }
      : { connected: running, lastError: lastSourceError };
  };
  // Function addresses of the current map, rebuilt when the map is: a function label takes no other value.
  let addressesOf: readonly FunctionInfo[] | undefined;
  let addresses = new Set<string>();
  const knownAddresses = (): Set<string> => {
    const fns = controller.functions();
    if (fns !== addressesOf) {
      addressesOf = fns;
      addresses = new Set(fns.map((f) => f.address));
    }
    return addresses;
  };
  const metrics = new ConnectorMetrics({
    inFlight: () => engine.inFlight(),
    adaptiveLimits: () => engine.adaptiveLimits(),
    oldestPendingMs: () => engine.oldestPendingMs(),
    topicMap: () => {
      const s = controller.status();
      return {
        functions: s.functions,
        topics: s.topics,
        lastSyncAt: s.lastSyncAt,
        failures: s.consecutiveFailures,
      };
    },
    sourceConnected: () => ({ source: source.name, connected: sourceHealth().connected }),
    knownFunction: (address) => knownAddresses().has(address),
    subscriptions: (topic) => controller.subscriptions(topic),
    ...(options.registry ? { registry: options.registry } : {}),
  });
  const backlog = source.backlog ? backlogGauge(metrics.registry) : undefined;
  let stopBacklog = () => {};
  engine = new DeliveryEngine(
    controller,
    controller.invoker,
    controller.responses,
    {
      maxInFlight: options.maxInFlight ?? 64,
      maxPendingBytes: options.maxPendingBytes ?? 64 * 1024 * 1024,
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      maxInFlightPerFunction: options.maxInFlightPerFunction,
      retry: { ...DEFAULT_RETRY, ...options.retry },
      onFailure: options.onFailure ?? 'redeliver',
      adaptive: options.adaptiveConcurrency ?? false,
      deadLetter,
      source: source.name,
    },
    metrics,
    log,
  );

  let running = false;
  let stopping = false;
  let server: Server | undefined;
  let httpUrl: string | undefined;
  let run: { abort: AbortController; unsubs: (() => void)[] } | undefined;
  let restartTimer: NodeJS.Timeout | undefined;
  let restartAttempt = 0;
  let sourceStarted: Promise<void> | undefined;
  let sourceUp = false; // the last start of the source resolved and it has not failed since
  const failures = new RepeatLimiter();
  /** One line per failure (what, where, why once; the stack only at debug), identical repeats at 1, 2, 4, 8... */
  const logFailure = (err: unknown, what: string, fields: Record<string, unknown> = {}) => {
    const { message, code } = errorFields(err);
    log.debug({ err }, `${what}: ${message}`);
    const n = failures.hit(`${what}\u0000${message}`);
    if (n === undefined) return;
    log.error(
      { ...(code === undefined ? {} : { code }), ...fields, ...(n > 1 ? { repeated: n } : {}) },
      `${what}: ${message}`,
    );
  };
  const retryIn = () => Math.min(restartMax, restartMin * 2 ** Math.min(restartAttempt, 20));

  const readiness = (): string[] => {
    const reasons: string[] = [];
    if (!running || stopping) reasons.push(stopping ? 'stopping' : 'not started');
    const s = controller.status();
    if (!s.synced) reasons.push(`topic map never synced${s.lastError ? `: ${s.lastError}` : ''}`);
    else {
      const maxAge = Math.max(3 * controller.options.rebuildInterval, 10_000);
      if (s.lastSyncAt !== undefined && Date.now() - s.lastSyncAt > maxAge) {
        reasons.push(
          `topic map stale: last sync ${Math.round((Date.now() - s.lastSyncAt) / 1000)}s ago${s.lastError ? `: ${s.lastError}` : ''}`,
        );
      }
    }
    if (deadLetterError !== undefined) reasons.push(`dead-letter sink failing: ${deadLetterError}`);
    const h = sourceHealth();
    if (!h.connected)
      reasons.push(`source ${source.name} not connected${h.lastError ? `: ${h.lastError}` : ''}`);
    return reasons.map(redactSecrets); // broker and gateway errors may quote a secret
  };

  const makeContext = (abort: AbortController, unsubs: (() => void)[]): SourceContext => {
    return {
      deliver: (m) => engine.deliver(m),
      hasCapacity: () => engine.hasCapacity(),
      waitForCapacity: (signal) => engine.waitForCapacity(signal),
      topics: () => controller.topics(),
      onTopicsChange(listener) {
        let topicsKey = controller.topics().join('\u0000'); // per listener: each one must hear every change
        const off = controller.onChange(() => {
          const topics = controller.topics();
          const key = topics.join('\u0000');
          if (key === topicsKey) return;
          topicsKey = key;
          listener(topics);
        });
        unsubs.push(off);
        return off;
      },
      functions: () => controller.functions(),
      onFunctionsChange(listener: (fns: readonly FunctionInfo[]) => void) {
        const off = controller.onChange(() => listener(controller.functions()));
        unsubs.push(off);
        return off;
      },
      fail(error) {
        if (abort.signal.aborted) return;
        lastSourceError = (error as Error)?.message ?? String(error);
        sourceUp = false;
        logFailure(error, `source ${source.name} failed; restarting it`, { retryInMs: retryIn() });
        restart();
      },
      logger: log,
      signal: abort.signal,
    };
  };

  const startSource = async (): Promise<void> => {
    const abort = new AbortController();
    const unsubs: (() => void)[] = [];
    run = { abort, unsubs };
    await source.start(makeContext(abort, unsubs));
    if (restartAttempt > 0) log.info(`source ${source.name} started after ${restartAttempt} failed attempts`);
    restartAttempt = 0;
    lastSourceError = undefined;
    sourceUp = true;
    failures.reset();
  };

  const stopRun = async (): Promise<void> => {
    const r = run;
    run = undefined;
    if (!r) return;
    r.abort.abort();
    for (const off of r.unsubs) off();
    await source.stop();
  };

  const restart = () => {
    if (stopping || restartTimer) return;
    metrics.restart(source.name);
    const delay = Math.min(restartMax, restartMin * 2 ** Math.min(restartAttempt++, 20));
    void stopRun()
      .catch((err: unknown) => log.warn(errorFields(err), 'source stop after failure failed'))
      .then(() => {
        if (stopping) return;
        restartTimer = setTimeout(() => {
          restartTimer = undefined;
          if (stopping) return;
          sourceStarted = startSource().catch((err: unknown) => {
            lastSourceError = (err as Error)?.message ?? String(err);
            if (stopping) return;
            logFailure(err, `source ${source.name} failed to start`, { retryInMs: retryIn() });
            restart();
          });
        }, delay);
      });
  };

  const startHttp = async (cfg: { port: number; host?: string }) => {
    server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz') {
        const reasons = readiness();
        res
          .writeHead(reasons.length === 0 ? 200 : 503, { 'content-type': 'application/json' })
          .end(
            `${redactSecrets(JSON.stringify({ ready: reasons.length === 0, reasons, map: controller.status(), source: sourceHealth() }))}\n`,
          );
      } else if (path === '/metrics') {
        metrics.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
          (err: unknown) => res.writeHead(500).end(String(err)),
        );
      } else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    });
    const host = cfg.host ?? '0.0.0.0';
    await new Promise<void>((resolve, reject) => {
      server?.once('error', reject);
      server?.listen(cfg.port, host, () => resolve());
    });
    const addr = server.address() as AddressInfo;
    httpUrl = `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${addr.port}`;
    log.info({ url: httpUrl }, 'health and metrics endpoint listening');
  };

  const closeHttp = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  const shutdown = async (graceful: boolean) => {
    if (stopping) return;
    stopping = true;
    if (restartTimer) clearTimeout(restartTimer);
    restartTimer = undefined;
    stopBacklog();
    engine.close();
    const sourceStopped = stopRun().catch((err: unknown) => log.warn(errorFields(err), 'source stop failed'));
    if (graceful) {
      const drained = await engine.drain(drainTimeout);
      if (!drained)
        log.warn(
          { pending: engine.pending(), drainTimeout },
          'drain timeout: unsettled messages are not acked',
        );
    }
    engine.abort();
    if (engine.pending() > 0) controller.invoker.destroy(); // what is still in flight fails now, un-acked
    await sourceStopped;
    await sourceStarted?.catch(() => undefined);
    await controller.stop();
    await closeHttp();
    running = false;
    log.info({ graceful }, 'connector stopped');
  };

  return {
    async start() {
      if (running) throw new ConfigError('start', 'connector already started');
      if (options.deadLetterFile !== undefined) await checkDeadLetterFile(options.deadLetterFile);
      running = true;
      if (options.http) await startHttp(options.http);
      await controller.start();
      sourceStarted = startSource().catch((err: unknown) => {
        if (isShutdownError(err) || stopping) return;
        lastSourceError = (err as Error)?.message ?? String(err);
        logFailure(err, `source ${source.name} failed to start`, { retryInMs: retryIn() });
        restart();
      });
      await sourceStarted;
      if (backlog && !stopping)
        stopBacklog = sampleBacklog({
          source,
          gauge: backlog,
          interval: options.backlogInterval ?? DEFAULT_BACKLOG_INTERVAL,
          active: () => sourceUp && !stopping,
          logger: log,
        });
      const functions = controller.status().functions;
      if (sourceUp) log.info({ functions }, 'connector started');
      else log.warn({ functions }, 'connector started; source not connected, retrying');
    },
    stop: () => shutdown(true),
    kill: () => shutdown(false),
    inFlight: () => engine.inFlight(),
    pending: () => engine.pending(),
    ready: () => readiness().length === 0,
    readiness,
    metrics: metrics.registry,
    get httpUrl() {
      return httpUrl;
    },
  };
}

/** Options of `runConnector`: a connector plus process signal handling. */
export interface RunOptions extends ConnectorOptions {
  /** Handle SIGTERM/SIGINT: first = graceful stop then exit 0, second = exit 1 at once (default true). */
  signals?: boolean;
  /** Called with the exit code after a signal (default `process.exit`). */
  exit?: (code: number) => void;
}

// A compile error when RunOptions gains an option core's OPTION_KEYS does not list (so checkOptionKeys would refuse it).
const runKeysListed: [Exclude<keyof RunOptions, (typeof OPTION_KEYS)[number]>] extends [never]
  ? true
  : never = true;
void runKeysListed;

/** Create and start a connector; on SIGTERM/SIGINT stop it gracefully and exit 0 (a second signal exits 1). */
export async function runConnector(options: RunOptions): Promise<Connector> {
  checkOptionKeys('runConnector', options);
  const connector = createConnector(options);
  const log = options.logger ?? noopLogger;
  if (options.signals !== false) {
    const exit = options.exit ?? ((code: number) => process.exit(code));
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) {
        log.warn({ signal }, 'second signal: exiting now');
        off();
        exit(1);
        return;
      }
      signalled = true;
      log.info({ signal }, 'signal received: draining in-flight messages');
      connector.stop().then(
        () => {
          off();
          exit(0);
        },
        (err: unknown) => {
          log.error(errorFields(err), 'stop failed');
          off();
          exit(1);
        },
      );
    };
    const off = () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // A programmatic stop or kill also detaches the handlers, so nothing leaks into the process.
    const { stop, kill } = connector;
    connector.stop = () => stop().finally(off);
    connector.kill = () => kill().finally(off);
    try {
      await connector.start();
    } catch (err) {
      off();
      throw err;
    }
    return connector;
  }
  await connector.start();
  return connector;
}
