import { setMaxListeners } from 'node:events';
import { appendFile } from 'node:fs/promises';
import type { RetryOptions } from './config.js';
import type { Controller } from './controller.js';
import { InvokeError, ShutdownError } from './errors.js';
import { EMPTY_BODY } from './gateway.js';
import type { ConnectorMetrics } from './metrics.js';
import type { DeliveryOutcome, SourceMessage } from './source.js';
import type { FunctionInfo, InvokeOptions, InvokeResult, Logger } from './types.js';

/** A message whose function still failed after every retry. */
export interface DeadLetter {
  /** The message as the source delivered it. */
  readonly message: SourceMessage;
  /** Address of the function that failed. */
  readonly function: string;
  /** The last attempt's result. */
  readonly result: InvokeResult;
  /** Name of the source. */
  readonly source: string;
  /** Why it failed (error message). */
  readonly reason: string;
}

/** Receives dead letters; a rejection leaves the message un-acked (it is redelivered, not lost). */
export type DeadLetterHandler = (letter: DeadLetter) => void | Promise<void>;

/** Built-in dead-letter handler: one warn line per letter (body only when `printBody`). */
export function logDeadLetters(logger: Logger, printBody = false): DeadLetterHandler {
  return (l) => {
    logger.warn(
      {
        function: l.function,
        topic: l.message.topic,
        id: l.message.id,
        key: l.message.key,
        status: l.result.status,
        attempts: l.result.attempt,
        reason: l.reason,
        ...(printBody ? { body: Buffer.from(l.message.body).toString('utf8') } : {}),
      },
      'dead letter',
    );
  };
}

/** Built-in dead-letter handler: appends one JSON line per letter to `path` (body base64). */
export function fileDeadLetters(path: string): DeadLetterHandler {
  let chain: Promise<void> = Promise.resolve();
  return (l) => {
    const line = `${JSON.stringify({
      at: new Date().toISOString(),
      source: l.source,
      topic: l.message.topic,
      function: l.function,
      id: l.message.id,
      key: l.message.key,
      headers: l.message.headers,
      status: l.result.status,
      attempts: l.result.attempt,
      reason: l.reason,
      bodyBase64: Buffer.from(l.message.body).toString('base64'),
    })}\n`;
    chain = chain.then(() => appendFile(path, line));
    return chain;
  };
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/** A counting semaphore with a FIFO queue whose waiters can all be rejected at shutdown. */
export class Semaphore {
  active = 0;
  private queue: Waiter[] = [];
  private head = 0;
  constructor(readonly limit: number) {}

  /** Waiters not yet granted a slot. */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  /** Take a slot now if one is free. */
  tryAcquire(): boolean {
    if (this.active < this.limit && this.waiting === 0) {
      this.active++;
      return true;
    }
    return false;
  }

  /** Wait for a slot. */
  acquire(): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    return new Promise((resolve, reject) => this.queue.push({ resolve, reject }));
  }

  /** Give a slot back (hands it to the next waiter, if any). */
  release(): void {
    if (this.head < this.queue.length) {
      const w = this.queue[this.head] as Waiter;
      this.queue[this.head++] = undefined as unknown as Waiter;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      w.resolve();
    } else this.active--;
  }

  /** Reject every waiter with `err`. */
  rejectAll(err: Error): void {
    const q = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    for (const w of q) w.reject(err);
  }
}

/** Options of the delivery engine (resolved). */
export interface EngineOptions {
  maxInFlight: number;
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

/** Exponential backoff with full jitter: random in [0, min(maxDelay, minDelay * 2^(attempt-1))]. */
export function backoff(attempt: number, minDelay: number, maxDelay: number, random = Math.random): number {
  const cap = Math.min(maxDelay, minDelay * 2 ** Math.min(attempt - 1, 30));
  return Math.floor(random() * cap);
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

/** Routes messages to functions with bounded concurrency, per-key order, retries and dead letters. */
export class DeliveryEngine {
  private readonly global: Semaphore;
  private readonly perFunction = new Map<string, Semaphore>();
  private readonly tails = new Map<string, Promise<void>>();
  private readonly hard = new AbortController();
  private readonly retryOn: Set<number>;
  private closed = false;
  private pendingCount = 0;
  private drainWaiters: (() => void)[] = [];
  private capacityWaiters: (() => void)[] = [];

  constructor(
    private readonly controller: Controller,
    private readonly opts: EngineOptions,
    private readonly metrics: ConnectorMetrics | undefined,
    private readonly log: Logger,
  ) {
    this.global = new Semaphore(opts.maxInFlight);
    // Every in-flight request and back-off sleep listens on this one signal.
    setMaxListeners(0, this.hard.signal);
    this.retryOn = new Set(opts.retry.retryOnStatus);
  }

  /** Invocations holding or waiting for a slot. */
  inFlight(): number {
    return this.global.active;
  }

  /** Deliveries accepted and not yet settled. */
  pending(): number {
    return this.pendingCount;
  }

  /** True while a new invocation would start without waiting. */
  hasCapacity(): boolean {
    return this.global.active + this.global.waiting < this.global.limit;
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

  /** Route one message; settles when every matched function has a final result. */
  deliver(msg: SourceMessage): Promise<DeliveryOutcome> {
    if (this.closed) return Promise.reject(new ShutdownError());
    this.pendingCount++;
    this.metrics?.receivedMessage(this.opts.source, msg.topic);
    const key = msg.orderingKey;
    let run: Promise<DeliveryOutcome>;
    if (key === undefined) run = this.fastOrRoute(msg);
    else {
      const prev = this.tails.get(key);
      run = prev ? prev.then(() => this.route(msg)) : this.route(msg);
      const tail = run.then(
        () => undefined,
        () => undefined,
      );
      this.tails.set(key, tail);
      void tail.then(() => {
        if (this.tails.get(key) === tail) this.tails.delete(key);
      });
    }
    return run.finally(() => this.settled());
  }

  private settled(): void {
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

  /** Abort everything now: in-flight requests, back-off sleeps and queued deliveries reject with ShutdownError. */
  abort(): void {
    this.close();
    this.hard.abort(new ShutdownError());
    if (this.pendingCount > 0) this.controller.abort();
    this.global.rejectAll(new ShutdownError());
    for (const s of this.perFunction.values()) s.rejectAll(new ShutdownError());
  }

  private async route(msg: SourceMessage): Promise<DeliveryOutcome> {
    if (this.hard.signal.aborted) throw new ShutdownError();
    let targets: readonly (FunctionInfo | string)[];
    if (msg.functions !== undefined) targets = msg.functions.map((n) => this.controller.resolve(n) ?? n);
    else targets = this.controller.match(msg.topic);
    if (targets.length === 0) {
      // Before the first topic-map sync "no function" means "not known yet": do not let the source ack it.
      if (!this.controller.synced()) return NOT_SYNCED;
      this.metrics?.unroutedMessage(this.opts.source);
      this.metrics?.delivery('unrouted');
      this.log.debug({ topic: msg.topic, id: msg.id }, 'no function subscribed to topic');
      return UNROUTED;
    }
    const results =
      targets.length === 1
        ? [await this.invoke(targets[0] as FunctionInfo | string, msg)]
        : await Promise.all(targets.map((t) => this.invoke(t, msg)));
    return this.settle(msg, results);
  }

  /**
   * The happy path without async frames: no ordering key, exactly one matched function, a free slot and success at
   * the first attempt. Anything else takes `route` (or, after a first failure, the retry loop) with the same rules.
   */
  private fastOrRoute(msg: SourceMessage): Promise<DeliveryOutcome> {
    if (
      msg.functions !== undefined ||
      this.opts.maxInFlightPerFunction !== undefined ||
      this.hard.signal.aborted
    ) {
      return this.route(msg);
    }
    const targets = this.controller.match(msg.topic);
    if (targets.length !== 1 || !this.global.tryAcquire()) return this.route(msg);
    const fn = targets[0] as FunctionInfo;
    return this.controller.invokeOnce(fn, msg.topic, msg.body, this.optionsFor(msg, 1)).then(
      (r): DeliveryOutcome | Promise<DeliveryOutcome> => {
        this.metrics?.invocation(fn.address, r.status, r.duration);
        if (r.error) return this.afterFirstFailure(fn, msg, r);
        this.releaseGlobal();
        this.controller.publish(r);
        this.metrics?.delivery('delivered');
        return { status: 'delivered', ack: true, results: [r] };
      },
      (err: unknown) => {
        this.releaseGlobal();
        throw err;
      },
    );
  }

  /** The fast path's first attempt failed: retry as usual while still holding its slot. */
  private async afterFirstFailure(
    fn: FunctionInfo,
    msg: SourceMessage,
    first: InvokeResult,
  ): Promise<DeliveryOutcome> {
    let r: InvokeResult;
    try {
      r = await this.attempts(fn, fn.address, msg, first);
    } finally {
      this.releaseGlobal();
    }
    return this.settle(msg, [r]);
  }

  /** Turn final results into the outcome: delivered, dead-lettered (handlers ran) or failed. */
  private async settle(msg: SourceMessage, results: InvokeResult[]): Promise<DeliveryOutcome> {
    let failed: InvokeResult[] | undefined;
    for (const r of results) if (r.error) (failed ??= []).push(r);
    if (!failed) {
      this.metrics?.delivery('delivered');
      return { status: 'delivered', ack: true, results };
    }
    if (this.opts.onFailure === 'dead-letter') {
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
      }
    }
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

  private acquireFunction(fn: string): Semaphore | undefined {
    const limit = this.opts.maxInFlightPerFunction;
    if (limit === undefined) return undefined;
    let s = this.perFunction.get(fn);
    if (!s) this.perFunction.set(fn, (s = new Semaphore(limit)));
    return s;
  }

  private async invoke(target: FunctionInfo | string, msg: SourceMessage): Promise<InvokeResult> {
    const address = typeof target === 'string' ? target : target.address;
    const fnSem = this.acquireFunction(address);
    if (fnSem && !fnSem.tryAcquire()) await fnSem.acquire();
    try {
      if (!this.global.tryAcquire()) await this.global.acquire();
      try {
        return await this.attempts(target, address, msg);
      } finally {
        this.releaseGlobal();
      }
    } finally {
      fnSem?.release();
    }
  }

  /** Give a global slot back and wake sources waiting for capacity. */
  private releaseGlobal(): void {
    this.global.release();
    if (this.capacityWaiters.length > 0 && this.hasCapacity()) {
      const ws = this.capacityWaiters;
      this.capacityWaiters = [];
      for (const w of ws) w();
    }
  }

  private optionsFor(msg: SourceMessage, attempt: number): InvokeOptions {
    // No per-request AbortSignal: listeners on one shared signal cost more than the request itself at high
    // rates; a hard stop destroys the controller's connection pool instead (see abort()).
    const options: InvokeOptions = { attempt };
    if (msg.headers !== undefined) options.headers = msg.headers;
    if (msg.contentType !== undefined) options.contentType = msg.contentType;
    return options;
  }

  private async attempts(
    target: FunctionInfo | string,
    address: string,
    msg: SourceMessage,
    first?: InvokeResult,
  ): Promise<InvokeResult> {
    const { maxRetries, minDelay, maxDelay } = this.opts.retry;
    const signal = this.hard.signal;
    const topic = msg.topic;
    let refreshed = false;
    for (let attempt = 1; ; attempt++) {
      let r: InvokeResult;
      if (attempt === 1 && first !== undefined)
        r = first; // made (and counted) by the fast path
      else {
        r =
          typeof target === 'string' && this.controller.resolve(target) === undefined
            ? this.outside(target, topic, attempt)
            : await this.controller.invokeOnce(target, topic, msg.body, this.optionsFor(msg, attempt));
        this.metrics?.invocation(address, r.status, r.duration);
      }
      if (!r.error) {
        this.controller.publish(r);
        return r;
      }
      if (signal.aborted) throw new ShutdownError();
      let retry = this.retryable(r);
      if (r.status === 404 && !refreshed) {
        refreshed = true;
        await this.controller.refresh().catch(() => undefined);
        retry =
          msg.functions !== undefined || this.controller.match(topic).some((f) => f.address === address);
      }
      if (!retry || attempt > maxRetries) {
        this.controller.publish(r);
        return r;
      }
      this.controller.publish({ ...r, final: false });
      this.metrics?.retry(address);
      const wait = Math.max(
        retryAfterMs(r.headers['retry-after']) ?? 0,
        backoff(attempt, minDelay, maxDelay),
      );
      this.log.debug({ function: address, status: r.status, attempt, wait }, 'retrying invocation');
      await sleep(wait, signal);
    }
  }

  private retryable(r: InvokeResult): boolean {
    const code = r.error?.code;
    if (code === 'ERR_NETWORK' || code === 'ERR_TIMEOUT') return true;
    if (this.retryOn.has(r.status)) return true;
    // Async invocations retry until the gateway queues them (202); a 400 (bad callback URL) never will.
    return r.async && r.status >= 500;
  }

  private outside(fn: string, topic: string, attempt: number): InvokeResult {
    return {
      topic,
      function: fn,
      status: 0,
      headers: {},
      body: EMPTY_BODY,
      duration: 0,
      error: new InvokeError('ERR_FUNCTION_NOT_FOUND', `function ${fn} is outside the configured namespace`),
      async: false,
      attempt,
      final: true,
    };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new ShutdownError());
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new ShutdownError());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
