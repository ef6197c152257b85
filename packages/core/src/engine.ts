import type { RetryOptions } from './config.js';
import type { Controller } from './controller.js';
import type { DeadLetter, DeadLetterHandler } from './dead-letters.js';
import { InvokeError, ShutdownError } from './errors.js';
import type { Invoker } from './invoker.js';
import { backoff } from './kit/backoff.js';
import { sleep } from './kit/sleep.js';
import type { ConnectorMetrics } from './metrics.js';
import type { ResponseHub } from './responses.js';
import { Semaphore } from './semaphore.js';
import type { DeliveryOutcome, SourceMessage } from './source.js';
import type { FunctionInfo, InvokeOptions, InvokeResult, Logger } from './types.js';

/** Options of the delivery engine (resolved). */
export interface EngineOptions {
  maxInFlight: number;
  maxPendingBytes: number;
  maxInFlightPerFunction: number | undefined;
  retry: Required<RetryOptions>;
  onFailure: 'dead-letter' | 'redeliver';
  deadLetter: DeadLetterHandler | undefined;
  source: string;
}

/** Default retry policy. */
export const DEFAULT_RETRY: Required<RetryOptions> = {
  maxRetries: 3,
  minDelay: 100,
  maxDelay: 10_000,
  retryOnStatus: [408, 429, 502, 503, 504],
};

/** Parse `Retry-After` (seconds or an HTTP date) into ms, capped at 10 minutes. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value === '') return undefined;
  const secs = Number(value);
  const ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(value) - now;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(ms, 0), 600_000);
}

/** Before the first topic-map sync an empty match proves nothing: the message is not acked (the broker keeps it). */
const NOT_SYNCED: DeliveryOutcome = Object.freeze({
  status: 'failed',
  ack: false,
  results: Object.freeze([]),
});
const UNROUTED: DeliveryOutcome = Object.freeze({
  status: 'unrouted',
  ack: true,
  results: Object.freeze([]),
});

/** The parts of the controller the engine uses: discovery only. */
export type Discovery = Pick<Controller, 'match' | 'resolve' | 'refresh' | 'synced' | 'ready'>;

/**
 * The delivery pipeline — the one path a message takes inside a connector:
 * `deliver` (order per key) → `route` (match) → `invoke` (slots) → `attempt` (invoker, retries) → `settle` (outcome).
 * Written without async frames on the common path (functions return promises; slots are taken synchronously when
 * free), so there is no second "fast" copy of these rules.
 */
export class DeliveryEngine {
  private readonly global: Semaphore;
  private readonly perFunction = new Map<string, Semaphore>();
  private readonly tails = new Map<string, Promise<unknown>>();
  private readonly hard = new AbortController();
  private readonly retryOn: ReadonlySet<number>;
  private closed = false;
  private firstSync: Promise<void> | undefined;
  private pendingCount = 0;
  private pendingBytes = 0;
  private drainWaiters: (() => void)[] = [];
  private capacityWaiters: (() => void)[] = [];

  constructor(
    private readonly discovery: Discovery,
    private readonly invoker: Invoker,
    private readonly responses: ResponseHub,
    private readonly opts: EngineOptions,
    private readonly metrics: ConnectorMetrics | undefined,
    private readonly log: Logger,
  ) {
    this.global = new Semaphore(opts.maxInFlight);
    this.retryOn = new Set(opts.retry.retryOnStatus);
  }

  /** Invocations holding a global slot now (waiting ones not counted). */
  inFlight(): number {
    return this.global.active;
  }

  /** Deliveries accepted and not yet settled. */
  pending(): number {
    return this.pendingCount;
  }

  /** True while a new invocation would start without waiting and the pending bodies are within the byte budget. */
  hasCapacity(): boolean {
    return (
      this.global.active + this.global.waiting < this.global.limit &&
      this.pendingBytes < this.opts.maxPendingBytes
    );
  }

  /** Bytes of message bodies accepted and not yet settled. */
  pendingSize(): number {
    return this.pendingBytes;
  }

  /** Resolves when `hasCapacity()` (or at once when closed / the signal aborts). */
  waitForCapacity(signal?: AbortSignal): Promise<void> {
    if (this.hasCapacity() || this.closed || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.capacityWaiters.push(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Step 1 — accept: route one message; settles when every matched function has a final result. Messages with
   * the same `orderingKey` run one after another, in call order. */
  deliver(msg: SourceMessage): Promise<DeliveryOutcome> {
    if (this.closed) return Promise.reject(new ShutdownError());
    this.pendingCount++;
    const size = msg.body.byteLength;
    this.pendingBytes += size;
    this.metrics?.receivedMessage(this.opts.source, msg.topic);
    const key = msg.orderingKey;
    let run: Promise<DeliveryOutcome>;
    if (key === undefined) run = this.route(msg);
    else {
      const prev = this.tails.get(key);
      run = prev === undefined ? this.route(msg) : prev.then(() => this.route(msg));
      const tail = run.then(noop, noop);
      this.tails.set(key, tail);
      tail.then(() => {
        if (this.tails.get(key) === tail) this.tails.delete(key);
      });
    }
    const done = () => this.settled(size);
    run.then(done, done);
    return run;
  }

  private settled(size: number): void {
    this.pendingBytes -= size;
    if (size > 0) this.wakeCapacityWaiters();
    if (--this.pendingCount === 0 && this.drainWaiters.length > 0) {
      const ws = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of ws) w();
    }
  }

  /** Refuse new deliveries (they reject with ShutdownError); in-flight ones continue. */
  close(): void {
    this.closed = true;
    const ws = this.capacityWaiters;
    this.capacityWaiters = [];
    for (const w of ws) w();
  }

  /** Wait until nothing is pending, at most `timeout` ms; true when drained. */
  drain(timeout: number): Promise<boolean> {
    if (this.pendingCount === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.drainWaiters = this.drainWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeout);
      const done = () => {
        clearTimeout(t);
        resolve(true);
      };
      this.drainWaiters.push(done);
    });
  }

  /** Abort the engine's own waits now: back-off sleeps and queued slots reject with ShutdownError. (Requests in
   * flight are the invoker's: the connector destroys it.) */
  abort(): void {
    this.close();
    this.hard.abort(new ShutdownError());
    this.global.rejectAll(new ShutdownError());
    for (const s of this.perFunction.values()) s.rejectAll(new ShutdownError());
  }

  /** Step 2 — match: the message's functions (by topic, or by name), then one invocation each. */
  private route(msg: SourceMessage): Promise<DeliveryOutcome> {
    if (this.hard.signal.aborted) return Promise.reject(new ShutdownError());
    let targets: readonly (FunctionInfo | string)[];
    if (msg.functions !== undefined) targets = msg.functions.map((n) => this.discovery.resolve(n) ?? n);
    else targets = this.discovery.match(msg.topic);
    if (targets.length === 0) {
      if (!this.discovery.synced()) return this.unsynced(msg);
      this.metrics?.unroutedMessage(this.opts.source);
      this.metrics?.delivery('unrouted');
      this.log.debug({ topic: msg.topic, id: msg.id }, 'no function subscribed to topic');
      return Promise.resolve(UNROUTED);
    }
    if (targets.length === 1)
      return this.invoke(targets[0] as FunctionInfo | string, msg).then((r) => this.settle(msg, [r]));
    return Promise.all(targets.map((t) => this.invoke(t, msg))).then((rs) => this.settle(msg, rs));
  }

  /**
   * Before the first topic-map sync an empty match proves nothing. The message waits (holding a slot, so a source
   * is held back) up to a second for the first sync, then is routed — or left un-acked for the broker to redeliver.
   */
  private unsynced(msg: SourceMessage): Promise<DeliveryOutcome> {
    this.firstSync ??= this.discovery.ready(this.hard.signal).catch(noop);
    const firstSync = this.firstSync;
    const wait = (): Promise<DeliveryOutcome> =>
      Promise.race([firstSync, sleep(1000, this.hard.signal)]).then(
        () => {
          this.releaseGlobal();
          return this.discovery.synced() ? this.route(msg) : NOT_SYNCED;
        },
        (err: unknown) => {
          this.releaseGlobal();
          throw err;
        },
      );
    return this.global.tryAcquire() ? wait() : this.global.acquire().then(wait);
  }

  /** Step 3 — slots: a per-function slot (when limited), then a global one, held until the final result. */
  private invoke(target: FunctionInfo | string, msg: SourceMessage): Promise<InvokeResult> {
    const address = typeof target === 'string' ? target : target.address;
    const fnSem = this.functionSlots(address);
    if (fnSem === undefined) return this.withGlobalSlot(target, address, msg);
    const run = () =>
      this.withGlobalSlot(target, address, msg).then(
        (r) => {
          fnSem.release();
          return r;
        },
        (err: unknown) => {
          fnSem.release();
          throw err;
        },
      );
    return fnSem.tryAcquire() ? run() : fnSem.acquire().then(run);
  }

  private withGlobalSlot(
    target: FunctionInfo | string,
    address: string,
    msg: SourceMessage,
  ): Promise<InvokeResult> {
    const run = () =>
      this.attempt(target, address, msg, 1, false).then(
        (r) => {
          this.releaseGlobal();
          return r;
        },
        (err: unknown) => {
          this.releaseGlobal();
          throw err;
        },
      );
    return this.global.tryAcquire() ? run() : this.global.acquire().then(run);
  }

  /** Step 4 — attempts: invoke, then retry what the result says a retry can help with (its error's `canRetry`,
   * Retry-After honoured), refreshing the map once on a 404. Every attempt's result is published. */
  private attempt(
    target: FunctionInfo | string,
    address: string,
    msg: SourceMessage,
    attempt: number,
    refreshed: boolean,
  ): Promise<InvokeResult> {
    let call: Promise<InvokeResult>;
    if (typeof target === 'string' && this.discovery.resolve(target) === undefined) {
      const err = new InvokeError(
        'ERR_FUNCTION_NOT_FOUND',
        `function ${target} is outside the configured namespace`,
      );
      call = Promise.resolve(this.invoker.failed(target, msg.topic, err, attempt));
    } else call = this.invoker.invoke(target, msg.topic, msg.body, this.optionsFor(msg, attempt));
    return call.then((r) => {
      this.metrics?.invocation(address, r.status, r.duration);
      const error = r.error;
      if (error === undefined) {
        this.responses.publish(r);
        return r;
      }
      if (this.hard.signal.aborted) throw new ShutdownError();
      if (error.code === 'ERR_FUNCTION_NOT_FOUND' && r.status === 404 && !refreshed)
        return this.afterNotFound(target, address, msg, r, attempt);
      if (!error.canRetry || attempt > this.opts.retry.maxRetries) {
        this.responses.publish(r);
        return r;
      }
      return this.retry(target, address, msg, r, attempt, refreshed);
    });
  }

  /** A 404: the map may be stale. Refresh once; retry only if the function is still a target of the message. */
  private afterNotFound(
    target: FunctionInfo | string,
    address: string,
    msg: SourceMessage,
    r: InvokeResult,
    attempt: number,
  ): Promise<InvokeResult> {
    return this.discovery
      .refresh()
      .catch(noop)
      .then(() => {
        const still =
          msg.functions !== undefined || this.discovery.match(msg.topic).some((f) => f.address === address);
        if (!still || attempt > this.opts.retry.maxRetries) {
          this.responses.publish(r);
          return r;
        }
        return this.retry(target, address, msg, r, attempt, true);
      });
  }

  private retry(
    target: FunctionInfo | string,
    address: string,
    msg: SourceMessage,
    r: InvokeResult,
    attempt: number,
    refreshed: boolean,
  ): Promise<InvokeResult> {
    const { minDelay, maxDelay } = this.opts.retry;
    this.responses.publish({ ...r, final: false });
    this.metrics?.retry(address);
    const wait = Math.max(retryAfterMs(r.headers['retry-after']) ?? 0, backoff(attempt, minDelay, maxDelay));
    this.log.debug({ function: address, status: r.status, attempt, wait }, 'retrying invocation');
    return sleep(wait, this.hard.signal).then((slept) => {
      if (!slept) throw new ShutdownError();
      return this.attempt(target, address, msg, attempt + 1, refreshed);
    });
  }

  /** Step 5 — settle: final results → the outcome (delivered, dead-lettered after the handlers ran, or failed). */
  private settle(msg: SourceMessage, results: InvokeResult[]): DeliveryOutcome | Promise<DeliveryOutcome> {
    let failed: InvokeResult[] | undefined;
    for (const r of results) if (r.error) (failed ??= []).push(r);
    if (failed === undefined) {
      this.metrics?.delivery('delivered');
      return { status: 'delivered', ack: true, results };
    }
    if (this.opts.onFailure === 'dead-letter') return this.deadLetter(msg, results, failed);
    return this.failed(msg, results, failed);
  }

  private async deadLetter(
    msg: SourceMessage,
    results: InvokeResult[],
    failed: InvokeResult[],
  ): Promise<DeliveryOutcome> {
    try {
      for (const r of failed) {
        const letter: DeadLetter = {
          message: msg,
          function: r.function,
          result: r,
          source: this.opts.source,
          reason: r.error?.message ?? `status ${r.status}`,
        };
        if (this.opts.deadLetter) await this.opts.deadLetter(letter);
        this.metrics?.deadLetter(r.function);
      }
      this.metrics?.delivery('dead-lettered');
      return { status: 'dead-lettered', ack: true, results };
    } catch (err) {
      this.log.error(
        { err, topic: msg.topic, id: msg.id },
        'dead-letter handler failed; message left un-acked',
      );
      return this.failed(msg, results, failed);
    }
  }

  private failed(msg: SourceMessage, results: InvokeResult[], failed: InvokeResult[]): DeliveryOutcome {
    this.metrics?.delivery('failed');
    this.log.warn(
      {
        topic: msg.topic,
        id: msg.id,
        failed: failed.map((r) => ({ function: r.function, status: r.status, err: r.error?.message })),
      },
      'delivery failed; message left for redelivery',
    );
    return { status: 'failed', ack: false, results };
  }

  private functionSlots(fn: string): Semaphore | undefined {
    const limit = this.opts.maxInFlightPerFunction;
    if (limit === undefined) return undefined;
    let s = this.perFunction.get(fn);
    if (!s) this.perFunction.set(fn, (s = new Semaphore(limit)));
    return s;
  }

  /** Give a global slot back and wake sources waiting for capacity. */
  private releaseGlobal(): void {
    this.global.release();
    this.wakeCapacityWaiters();
  }

  private wakeCapacityWaiters(): void {
    if (this.capacityWaiters.length > 0 && this.hasCapacity()) {
      const ws = this.capacityWaiters;
      this.capacityWaiters = [];
      for (const w of ws) w();
    }
  }

  private optionsFor(msg: SourceMessage, attempt: number): InvokeOptions {
    // No per-request AbortSignal: a hard stop destroys the invoker's pool instead (see the connector's kill).
    const options: InvokeOptions = { attempt, retryOn: this.retryOn };
    if (msg.headers !== undefined) options.headers = msg.headers;
    if (msg.contentType !== undefined) options.contentType = msg.contentType;
    return options;
  }
}

function noop(): void {}
