import { setMaxListeners } from 'node:events';
import { ADAPTIVE_START, AdaptiveLimit } from './adaptive.js';
import { type BatchCallbacks, Batcher } from './batcher.js';
import type { RetryOptions } from './config.js';
import type { Controller } from './controller.js';
import type { DeadLetter, DeadLetterHandler } from './dead-letters.js';
import { InvokeError, ShutdownError } from './errors.js';
import type { Invoker } from './invoker.js';
import { backoff } from './kit/backoff.js';
import { sleep } from './kit/sleep.js';
import type { ConnectorMetrics } from './metrics.js';
import { type FunctionPolicy, Policies } from './policy.js';
import type { ResponseHub } from './responses.js';
import { Semaphore } from './semaphore.js';
import type { DeliveryOutcome, SourceMessage } from './source.js';
import { type DeliveryTrace, deliveryTrace, endDeliveryTrace, traceRetry } from './tracing.js';
import type { BatchItem, FunctionInfo, InvokeOptions, InvokeResult, Logger } from './types.js';

/** Options of the delivery engine (resolved). */
export interface EngineOptions {
  maxInFlight: number;
  maxPendingBytes: number;
  /** Larger bodies are dead-lettered (ERR_MESSAGE_TOO_LARGE) instead of invoked. */
  maxMessageBytes: number;
  maxInFlightPerFunction: number | undefined;
  retry: Required<RetryOptions>;
  onFailure: 'dead-letter' | 'redeliver';
  /** Adaptive concurrency for every function (an annotation can turn it on or off per function). */
  adaptive: boolean;
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

/** Default `maxMessageBytes`: 16 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

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

/** One settled promise for every wait that need not wait (a source asks before each message). */
const RESOLVED: Promise<void> = Promise.resolve();

/** The parts of the controller the engine uses: discovery only. */
export type Discovery = Pick<Controller, 'match' | 'resolve' | 'refresh' | 'synced' | 'ready'>;

/**
 * The delivery pipeline — the one path a message takes inside a connector:
 * `deliver` (order per key) → `route` (match) → `invoke` (slots) → `attempt` (invoker, retries) → `settle` (outcome).
 * A function that takes batches (`connector.dev/batch-size`) gets its attempts through its `Batcher` instead of one
 * request each; everything else (retries, dead letters, outcomes, acks) stays per message.
 * The steps call each other with the message's `Delivery` and one `Job` per function (no promise per step: the
 * one promise is `deliver`'s, settled by `finished`); slots are taken synchronously when free, and a step that
 * throws ends its job with that error (`jobFailed`). So the common path is fast without a second "fast" copy of
 * these rules.
 */
export class DeliveryEngine {
  private readonly global: Semaphore;
  private readonly perFunction = new Map<string, Semaphore>();
  private readonly adaptive = new Map<string, AdaptiveLimit>();
  private readonly batchers = new Map<string, Batcher>();
  private readonly policies: Policies;
  /** Ordering keys with a message under way: the messages of the key waiting behind it, oldest first. */
  private readonly lanes = new Map<string, Delivery[]>();
  private readonly hard = new AbortController();
  private closed = false;
  private firstSync: Promise<void> | undefined;
  private pendingCount = 0;
  private pendingBytes = 0;
  /** When each accepted, unsettled message arrived, oldest first. */
  private readonly arrivals = new Arrivals();
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
    // Every back-off sleep listens on this one signal while it waits: as many as there are slots, not a leak.
    setMaxListeners(0, this.hard.signal);
    this.policies = new Policies(
      {
        retry: opts.retry,
        maxInFlightPerFunction: opts.maxInFlightPerFunction,
        onFailure: opts.onFailure,
        adaptive: opts.adaptive,
      },
      log,
    );
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

  /** Age in ms of the oldest message accepted and not yet settled (0 when none). */
  oldestPendingMs(): number {
    const at = this.arrivals.oldest();
    return at === undefined ? 0 : Date.now() - at;
  }

  /** Bytes of message bodies accepted and not yet settled. */
  pendingSize(): number {
    return this.pendingBytes;
  }

  /** Resolves when `hasCapacity()` (or at once when closed / the signal aborts). */
  waitForCapacity(signal?: AbortSignal): Promise<void> {
    if (this.hasCapacity() || this.closed || signal?.aborted) return RESOLVED; // the common case: no allocation
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
   * the same `orderingKey` run one after another, in call order. One promise per message: the steps below hand
   * each other the `Delivery` and its `Job`s instead of chaining a promise per step. */
  deliver(msg: SourceMessage): Promise<DeliveryOutcome> {
    if (this.closed) return Promise.reject(new ShutdownError());
    this.pendingCount++;
    const size = msg.body.byteLength;
    this.pendingBytes += size;
    const arrival = this.arrivals.add(Date.now());
    this.metrics?.receivedMessage(this.opts.source, msg);
    const tr = deliveryTrace(msg, this.opts.source); // undefined unless an OpenTelemetry SDK is registered
    const outcome = new Promise<DeliveryOutcome>(capture);
    const d = new Delivery(msg, tr, arrival, size, captured.resolve, captured.reject);
    const key = msg.orderingKey;
    if (key === undefined) this.route(d);
    else {
      const lane = this.lanes.get(key);
      if (lane === undefined) {
        this.lanes.set(key, []);
        this.route(d);
      } else lane.push(d);
    }
    return outcome;
  }

  /**
   * The next message of `d`'s ordering key may start: `d` is settled — or, when every function of it takes
   * batches, it is in their batches, whose lines keep the key's order from there (see `Batcher`). Once per message,
   * a microtask later (so a long line does not go one stack frame deeper per message).
   */
  private leaveLane(d: Delivery): void {
    const key = d.msg.orderingKey;
    if (key === undefined || d.leftLane) return;
    d.leftLane = true;
    queueMicrotask(() => this.nextInLane(key));
  }

  /** Start the oldest message waiting behind key `key`, or close the lane when none is. */
  private nextInLane(key: string): void {
    const lane = this.lanes.get(key) as Delivery[];
    const d = lane.shift();
    if (d === undefined) this.lanes.delete(key);
    else this.route(d);
  }

  /** A delivery's outcome, or its promise while dead-letter handlers run. */
  private complete(d: Delivery, outcome: DeliveryOutcome | Promise<DeliveryOutcome>): void {
    if (outcome instanceof Promise)
      outcome.then(
        (o) => this.finished(d, o, undefined),
        (err: unknown) => this.finished(d, undefined, err),
      );
    else this.finished(d, outcome, undefined);
  }

  /** The end of a delivery (an outcome, or the error that ended it): counted as settled, its key's next message may
   * go, then its promise settles. Only the first end counts. */
  private finished(d: Delivery, outcome: DeliveryOutcome | undefined, err: unknown): void {
    if (d.done) return;
    d.done = true;
    this.arrivals.settle(d.arrival);
    this.settled(d.size);
    this.leaveLane(d);
    if (outcome !== undefined) {
      if (d.tr !== undefined) endDeliveryTrace(d.tr, outcome);
      d.resolve(outcome);
    } else {
      if (d.tr !== undefined) endDeliveryTrace(d.tr, undefined, err);
      d.reject(err);
    }
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

  /** Refuse new deliveries (they reject with ShutdownError); in-flight ones continue (batches waiting for their
   * window are sent now, so a drain does not wait for it). */
  close(): void {
    this.closed = true;
    for (const b of this.batchers.values()) b.drain();
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
    for (const b of this.batchers.values()) b.abort(new ShutdownError());
  }

  /** Step 2 — match: the message's functions (by topic, or by name), then one invocation each. */
  private route(d: Delivery): void {
    try {
      if (this.hard.signal.aborted) throw new ShutdownError();
      const { msg } = d;
      let targets: readonly (FunctionInfo | string)[];
      if (msg.functions !== undefined) targets = msg.functions.map((n) => this.discovery.resolve(n) ?? n);
      else targets = this.discovery.match(msg.topic);
      if (targets.length === 0) {
        if (!this.discovery.synced()) {
          this.unsynced(d);
          return;
        }
        this.metrics?.unroutedMessage(this.opts.source);
        this.metrics?.delivery('unrouted');
        this.log.debug({ topic: msg.topic, id: msg.id }, 'no function subscribed to topic');
        this.complete(d, UNROUTED);
        return;
      }
      if (msg.body.byteLength > this.opts.maxMessageBytes) {
        this.complete(d, this.tooLarge(msg, targets));
        return;
      }
      d.targets = targets;
      d.results = new Array<InvokeResult>(targets.length);
      d.left = targets.length;
      // A keyed message whose functions all take batches leaves its lane once it is in each of their batches.
      if (
        msg.orderingKey !== undefined &&
        targets.every((t) => typeof t !== 'string' && this.policies.of(t).batch)
      )
        d.unplaced = targets.length;
      for (let i = 0; i < targets.length; i++) this.invoke(d, i);
    } catch (err) {
      this.finished(d, undefined, err);
    }
  }

  /**
   * Before the first topic-map sync an empty match proves nothing. The message waits (holding a slot, so a source
   * is held back) up to a second for the first sync, then is routed — or left un-acked for the broker to redeliver.
   */
  private unsynced(d: Delivery): void {
    this.firstSync ??= this.discovery.ready(this.hard.signal).catch(noop);
    const firstSync = this.firstSync;
    const failed = (err: unknown) => this.finished(d, undefined, err);
    const wait = () =>
      void Promise.race([firstSync, sleep(1000, this.hard.signal)]).then(
        () => {
          this.releaseGlobal();
          if (this.discovery.synced()) this.route(d);
          else this.complete(d, NOT_SYNCED);
        },
        (err: unknown) => {
          this.releaseGlobal();
          failed(err);
        },
      );
    if (this.global.tryAcquire()) wait();
    else this.global.acquire().then(wait, failed);
  }

  /** Step 3 — slots: a per-function slot (its `max-inflight`, or the adaptive limit), then a global one, held
   * until the final result (a throttled attempt gives its function slot back and queues for it again). A batched
   * function's message holds its global slot only: its batch takes one per-function slot per request. */
  private invoke(d: Delivery, index: number): void {
    const target = d.targets[index] as FunctionInfo | string;
    const policy = this.policies.of(target);
    const job = new Job(d, index, target, policy);
    if (job.batchedTo !== undefined) {
      this.withGlobalSlot(job);
      return;
    }
    const fnSem = this.functionSlots(job);
    if (fnSem === undefined) {
      this.withGlobalSlot(job);
      return;
    }
    job.slots = fnSem;
    if (fnSem.tryAcquire()) {
      job.holding = true;
      this.withGlobalSlot(job);
      return;
    }
    fnSem.acquire().then(
      () => {
        job.holding = true;
        this.withGlobalSlot(job);
      },
      (err: unknown) => this.jobFailed(job, err),
    );
  }

  private withGlobalSlot(job: Job): void {
    if (this.global.tryAcquire()) {
      job.global = true;
      this.attempt(job, 1);
      return;
    }
    this.global.acquire().then(
      () => {
        job.global = true;
        this.attempt(job, 1);
      },
      (err: unknown) => this.jobFailed(job, err),
    );
  }

  /** A job's final result: its slots back, then its message settles once every function of it has one. */
  private jobDone(job: Job, r: InvokeResult): void {
    if (!this.jobEnded(job)) return;
    const d = job.delivery;
    d.results[job.index] = r;
    if (--d.left > 0) return;
    try {
      this.complete(d, this.settle(d.msg, d.targets, d.results));
    } catch (err) {
      this.finished(d, undefined, err);
    }
  }

  /** A job ended by an error (a shutdown, or a bug): its slots back, and its message's delivery rejects with it. */
  private jobFailed(job: Job, err: unknown): void {
    if (this.jobEnded(job)) this.finished(job.delivery, undefined, err);
  }

  /** Give back what a job holds (the global slot, then its function's), once; false when it had already ended. */
  private jobEnded(job: Job): boolean {
    if (job.ended) return false;
    job.ended = true;
    if (job.global) {
      job.global = false;
      this.releaseGlobal();
    }
    if (job.holding) {
      job.holding = false;
      job.slots?.release();
    }
    // In its batcher's line: the later messages of its key may go.
    if (job.batchedTo !== undefined && job.msg.orderingKey !== undefined)
      this.batchers.get(job.address)?.release(job);
    return true;
  }

  /** Step 4 — attempts: invoke, then retry what the result says a retry can help with (its error's `canRetry`,
   * the function's policy, Retry-After honoured), refreshing the map once on a 404. Every attempt is published. */
  private attempt(job: Job, attempt: number): void {
    try {
      const { target, msg, policy } = job;
      if (job.started === 0 && policy.maxAge !== undefined) job.started = Date.now(); // only max-age reads it
      if (typeof target === 'string' && this.discovery.resolve(target) === undefined) {
        const err = new InvokeError(
          'ERR_FUNCTION_NOT_FOUND',
          `function ${target} is outside the configured namespace`,
        );
        this.attempted(job, attempt, this.invoker.failed(target, msg.topic, err, attempt));
        return;
      }
      if (policy.maxAge !== undefined && Date.now() - (msg.timestamp ?? job.started) > policy.maxAge) {
        const age = Date.now() - (msg.timestamp ?? job.started);
        const err = new InvokeError(
          'ERR_MESSAGE_EXPIRED',
          `message is ${age} ms old, over max-age ${policy.maxAge} ms`,
        );
        this.attempted(job, attempt, this.invoker.failed(job.address, msg.topic, err, attempt));
        return;
      }
      if (job.batchedTo !== undefined) {
        this.batched(job.batchedTo, job, attempt); // its batcher hands the answer to `attempted`
        return;
      }
      this.invoker.invoke(target, msg.topic, msg.body, this.optionsFor(job, attempt)).then(
        (r) => this.attempted(job, attempt, r),
        (err: unknown) => this.jobFailed(job, err),
      );
    } catch (err) {
      this.jobFailed(job, err);
    }
  }

  /** An attempt's result: published and final, or the next step (a retry, a requeue, a refresh after a 404). */
  private attempted(job: Job, attempt: number, r: InvokeResult): void {
    try {
      const { policy } = job;
      this.metrics?.invocation(job.address, r.status, r.duration);
      const error = r.error;
      if (job.adaptive !== undefined) {
        if (error === undefined) job.adaptive.success();
        else if (overloaded(r)) job.adaptive.overload();
      }
      if (error === undefined) {
        this.responses.publish(r);
        this.jobDone(job, r);
        return;
      }
      if (this.hard.signal.aborted) throw new ShutdownError();
      if (error.code === 'ERR_BATCH_ITEM_HELD') {
        this.held(job, r, attempt);
        return;
      }
      if (error.code === 'ERR_FUNCTION_NOT_FOUND' && r.status === 404 && !job.refreshed) {
        this.afterNotFound(job, r, attempt);
        return;
      }
      // Adaptive: an overloaded function lowered its limit; this message queues for the function's slots again,
      // without spending an attempt.
      if (job.adaptive !== undefined && overloaded(r) && job.throttled < MAX_THROTTLED) {
        job.throttled++;
        this.requeue(job, r, attempt);
        return;
      }
      if (!error.canRetry || attempt > policy.maxRetries) {
        this.responses.publish(r);
        this.jobDone(job, r);
        return;
      }
      const reason =
        r.status === 0 || error.code === 'ERR_BATCH_ITEM_FAILED' ? error.code : `status_${r.status}`;
      this.retry(job, r, attempt, reason);
    } catch (err) {
      this.jobFailed(job, err);
    }
  }

  /** Held back behind a failed message of its key in the same batch: it goes again behind that one, at once and
   * without spending an attempt (the batcher parks it until the failed one is retried or final). */
  private held(job: Job, r: InvokeResult, attempt: number): void {
    this.responses.publish({ ...r, final: false });
    this.metrics?.retry(job.address, 'ERR_BATCH_ITEM_HELD');
    if (job.trace !== undefined) traceRetry(job.trace, r, 'ERR_BATCH_ITEM_HELD');
    this.attempt(job, attempt);
  }

  /** A batched attempt's outcome, straight from its batcher (the context of each item is its job). */
  private readonly batchOutcomes: BatchCallbacks = {
    result: (job, item, r) => this.attempted(job as Job, item.attempt ?? 1, r),
    error: (job, err) => this.jobFailed(job as Job, err),
  };

  /** One attempt of a batched function's message: into the function's batcher, which sends it with others. */
  private batched(target: FunctionInfo, job: Job, attempt: number): void {
    const { msg } = job;
    // A first attempt's item is the message itself (it has every field of an item; no attempt means 1), so a message
    // costs no copy on its way into a batch; a retry carries its attempt number.
    const item: BatchItem =
      attempt === 1 && !('attempt' in msg)
        ? msg
        : {
            topic: msg.topic,
            body: msg.body,
            key: msg.key,
            headers: msg.headers,
            contentType: msg.contentType,
            attempt,
          };
    let b = this.batchers.get(job.address);
    if (b === undefined) {
      b = new Batcher(
        target,
        this.invoker,
        (p) => this.limitOf(job.address, p.maxInFlight),
        this.batchOutcomes,
      );
      if (this.closed) b.drain();
      const size = job.policy.batch?.size ?? 1;
      if (size > this.opts.maxInFlight)
        this.log.warn(
          { function: job.address, batchSize: size, maxInFlight: this.opts.maxInFlight },
          'connector.dev/batch-size is over max_inflight: each message holds a slot, so batches are sent by their window, never full',
        );
      this.batchers.set(job.address, b);
    }
    const key = msg.orderingKey;
    b.add(target, item, job.policy, key === undefined ? undefined : { key, token: job }, job);
    if (!job.placed) {
      job.placed = true;
      const d = job.delivery;
      if (d.unplaced > 0 && --d.unplaced === 0) this.leaveLane(d);
    }
  }

  /** A 404: the map may be stale. Refresh once; retry only if the function is still a target of the message. */
  private afterNotFound(job: Job, r: InvokeResult, attempt: number): void {
    job.refreshed = true;
    this.discovery
      .refresh()
      .catch(noop)
      .then(() => {
        const { msg } = job;
        const still =
          msg.functions !== undefined ||
          this.discovery.match(msg.topic).some((f) => f.address === job.address);
        if (!still || attempt > job.policy.maxRetries) {
          this.responses.publish(r);
          return this.jobDone(job, r);
        }
        this.retry(job, r, attempt, 'not_found');
      })
      .catch((err: unknown) => this.jobFailed(job, err));
  }

  /** A throttled attempt under adaptive concurrency: give the function's slot back and wait for one again (after
   * the function's Retry-After, if it sent one). The message waits for the function's limit, not in a back-off
   * loop holding a slot the limit no longer has. */
  private requeue(job: Job, r: InvokeResult, attempt: number): void {
    const slots = job.slots as Semaphore;
    this.responses.publish({ ...r, final: false });
    this.metrics?.retry(job.address, 'throttled');
    if (job.trace !== undefined) traceRetry(job.trace, r, 'throttled');
    job.holding = false;
    slots.release();
    const again = () =>
      slots.acquire().then(() => {
        job.holding = true;
        this.attempt(job, attempt);
      });
    const wait = retryAfterMs(r.headers['retry-after']);
    const next =
      wait === undefined || wait === 0
        ? again()
        : sleep(wait, this.hard.signal).then((slept) => {
            if (!slept) throw new ShutdownError();
            return again();
          });
    next.catch((err: unknown) => this.jobFailed(job, err));
  }

  private retry(job: Job, r: InvokeResult, attempt: number, reason: string): void {
    const { minDelay, maxDelay } = job.policy;
    this.responses.publish({ ...r, final: false });
    this.metrics?.retry(job.address, reason);
    const wait = Math.max(
      retryAfterMs(r.headers['retry-after']) ?? 0,
      backoff(Math.max(attempt, 1), minDelay, maxDelay),
    );
    this.log.debug({ function: job.address, status: r.status, attempt, wait, reason }, 'retrying invocation');
    if (job.trace !== undefined) traceRetry(job.trace, r, reason, wait);
    sleep(wait, this.hard.signal)
      .then((slept) => {
        if (!slept) throw new ShutdownError();
        this.attempt(job, attempt + 1);
      })
      .catch((err: unknown) => this.jobFailed(job, err));
  }

  /** Step 5 — settle: final results → the outcome (delivered, dead-lettered after the handlers ran, or failed). A
   * message is dead-lettered when every failure may be: the function's policy says so, the function asked for it
   * (`X-Connector-Outcome: dead-letter`), or the message expired; otherwise it is left for redelivery. */
  private settle(
    msg: SourceMessage,
    targets: readonly (FunctionInfo | string)[],
    results: InvokeResult[],
  ): DeliveryOutcome | Promise<DeliveryOutcome> {
    let failed: InvokeResult[] | undefined;
    let redeliver = false;
    for (let i = 0; i < results.length; i++) {
      const r = results[i] as InvokeResult;
      if (!r.error) continue;
      (failed ??= []).push(r);
      const forced = r.error.code === 'ERR_FUNCTION_REJECTED' || r.error.code === 'ERR_MESSAGE_EXPIRED';
      if (!forced && this.policies.of(targets[i] as FunctionInfo | string).onFailure !== 'dead-letter')
        redeliver = true;
    }
    if (failed === undefined) {
      this.metrics?.delivery('delivered');
      return { status: 'delivered', ack: true, results };
    }
    if (!redeliver) return this.deadLetter(msg, results, failed);
    return this.failed(msg, results, failed);
  }

  /** Over `maxMessageBytes`: no invocation, dead-lettered for every target whatever its policy (never looped), and
   * without its body (a dead-letter topic would refuse it as well, and the message would come back). */
  private tooLarge(
    msg: SourceMessage,
    targets: readonly (FunctionInfo | string)[],
  ): Promise<DeliveryOutcome> {
    const why = `message of ${msg.body.byteLength} bytes is over max_message_bytes (${this.opts.maxMessageBytes})`;
    const results = targets.map((t) =>
      this.invoker.failed(
        typeof t === 'string' ? t : t.address,
        msg.topic,
        new InvokeError('ERR_MESSAGE_TOO_LARGE', why),
      ),
    );
    return this.deadLetter({ ...msg, body: new Uint8Array(0) }, results, results);
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
        this.metrics?.deadLetter(r.function, deadLetterReason(r));
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

  /** The function's own slots: its `max-inflight` (or the connector's per-function limit), adaptive when asked. */
  private functionSlots(job: Job): Semaphore | undefined {
    const { policy, address } = job;
    // A name the map does not know fails without a request: no slots for it (a message could name endless ones).
    if (typeof job.target === 'string') return undefined;
    const max = policy.maxInFlight ?? (policy.adaptive ? this.opts.maxInFlight : undefined);
    if (max === undefined) return undefined;
    if (!policy.adaptive) return this.limitOf(address, max);
    let s = this.perFunction.get(address);
    if (s === undefined) {
      s = new Semaphore(Math.min(max, ADAPTIVE_START));
      this.perFunction.set(address, s);
    }
    let a = this.adaptive.get(address);
    if (a === undefined || a.max !== max) this.adaptive.set(address, (a = new AdaptiveLimit(s, max)));
    job.adaptive = a;
    return s;
  }

  /** A function's fixed limit of requests in flight (`max-inflight`); undefined when it has none. */
  private limitOf(address: string, max: number | undefined): Semaphore | undefined {
    if (max === undefined) return undefined;
    let s = this.perFunction.get(address);
    if (s === undefined) {
      s = new Semaphore(max);
      this.perFunction.set(address, s);
    } else if (s.limit !== max) {
      this.adaptive.delete(address);
      s.setLimit(max); // the annotation changed between rebuilds
    }
    return s;
  }

  /** Current adaptive limit of each function that has one (for metrics). */
  adaptiveLimits(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [fn, a] of this.adaptive) out.set(fn, a.limit);
    return out;
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

  private optionsFor(job: Job, attempt: number): InvokeOptions {
    const { msg, policy } = job;
    // No per-request AbortSignal: a hard stop destroys the invoker's pool instead (see the connector's kill).
    const options: InvokeOptions = {
      attempt,
      retryOn: policy.retryOn,
      message: msg,
      source: this.opts.source,
    };
    if (job.trace !== undefined) options.traceContext = job.trace.context;
    if (policy.timeout !== undefined) options.timeout = policy.timeout;
    if (msg.headers !== undefined) options.headers = msg.headers;
    if (msg.contentType !== undefined) options.contentType = msg.contentType;
    return options;
  }
}

/**
 * Arrival times of accepted messages, in arrival order, each until it is settled (in any order): a ring of numbers
 * (message `n` at index `n & mask`), a settled one marked and dropped once it reaches the head — no object or hash
 * entry per message.
 */
export class Arrivals {
  private at = new Float64Array(64);
  private settled = new Uint8Array(64);
  private mask = 63;
  /** The number of the oldest unsettled message, and of the next one to arrive. */
  private head = 0;
  private tail = 0;

  /** Record one arrival; returns its number for `settle`. */
  add(at: number): number {
    if (this.tail - this.head > this.mask) this.grow();
    const n = this.tail++;
    this.at[n & this.mask] = at;
    return n;
  }

  /** The message numbered `n` is settled. */
  settle(n: number): void {
    const { settled, mask } = this;
    settled[n & mask] = 1;
    let head = this.head;
    while (head < this.tail && settled[head & mask] === 1) settled[head++ & mask] = 0;
    this.head = head;
  }

  /** The arrival time of the oldest unsettled message; undefined when none is. */
  oldest(): number | undefined {
    return this.head < this.tail ? this.at[this.head & this.mask] : undefined;
  }

  private grow(): void {
    const mask = this.mask * 2 + 1;
    const at = new Float64Array(mask + 1);
    const settled = new Uint8Array(mask + 1);
    for (let n = this.head; n < this.tail; n++) {
      at[n & mask] = this.at[n & this.mask] as number;
      settled[n & mask] = this.settled[n & this.mask] as number;
    }
    this.at = at;
    this.settled = settled;
    this.mask = mask;
  }
}

/** The settle functions of the promise just made with `capture`: one executor for every delivery, not a closure
 * each (the executor runs synchronously inside `new Promise`, so they are read right after). */
const captured: { resolve: (o: DeliveryOutcome) => void; reject: (err: unknown) => void } = {
  resolve: noop,
  reject: noop,
};
function capture(resolve: (o: DeliveryOutcome) => void, reject: (err: unknown) => void): void {
  captured.resolve = resolve;
  captured.reject = reject;
}

const NO_TARGETS: readonly (FunctionInfo | string)[] = Object.freeze([]);

/** One message from `deliver` to its outcome: its functions' results as they come in, and its promise to settle. */
class Delivery {
  /** The functions it goes to (set by `route`), and their final results, `left` of them still to come. */
  targets: readonly (FunctionInfo | string)[] = NO_TARGETS;
  results: InvokeResult[] = [];
  left = 0;
  /** Functions still to take it into a batch before its key's next message may start (see `leaveLane`). */
  unplaced = 0;
  leftLane = false;
  done = false;
  constructor(
    readonly msg: SourceMessage,
    /** The message's consumer span, when tracing is on. */
    readonly tr: DeliveryTrace | undefined,
    /** Its number in `Arrivals`, and its body's size in bytes (both given back when it settles). */
    readonly arrival: number,
    readonly size: number,
    readonly resolve: (o: DeliveryOutcome) => void,
    readonly reject: (err: unknown) => void,
  ) {}
}

/** One message on its way to one function (`delivery.targets[index]`). */
class Job {
  readonly address: string;
  readonly msg: SourceMessage;
  /** The message's consumer span, when tracing is on. */
  readonly trace: DeliveryTrace | undefined;
  /** When the first attempt began (ms since epoch); kept only under a max-age, the one rule that reads it. */
  started = 0;
  refreshed = false;
  throttled = 0;
  adaptive: AdaptiveLimit | undefined = undefined;
  /** The function's own slots, when it has a limit; `holding` while this job has one of them. */
  slots: Semaphore | undefined = undefined;
  holding = false;
  /** While it holds a global slot. */
  global = false;
  /** Its first attempt is in its function's batcher. */
  placed = false;
  /** It has its final result (or failed): its slots are back. */
  ended = false;
  /** The function its attempts go to in batches: set when the function's policy batches (an address given by
   * name is never batched). The one test of "is this job batched". */
  readonly batchedTo: FunctionInfo | undefined;
  constructor(
    readonly delivery: Delivery,
    readonly index: number,
    readonly target: FunctionInfo | string,
    readonly policy: FunctionPolicy,
  ) {
    this.address = typeof target === 'string' ? target : target.address;
    this.msg = delivery.msg;
    this.trace = delivery.tr;
    this.batchedTo = policy.batch !== undefined && typeof target !== 'string' ? target : undefined;
  }
}

/** Tries an overloaded function may answer with under adaptive concurrency before they count as failures. */
const MAX_THROTTLED = 50;

/** 429, 503 or a deadline: the function (or the gateway for it) has more than it can take. */
function overloaded(r: InvokeResult): boolean {
  return r.status === 429 || r.status === 503 || r.error?.code === 'ERR_TIMEOUT';
}

/** A bounded label for why a message was dead-lettered. */
function deadLetterReason(r: InvokeResult): string {
  const code = r.error?.code;
  if (code === 'ERR_INVOKE_STATUS') return `status_${r.status}`;
  return code ?? 'unknown';
}

function noop(): void {}
