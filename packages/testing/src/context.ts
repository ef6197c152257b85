import {
  type DeliveryOutcome,
  type FunctionInfo,
  type Logger,
  noopLogger,
  ShutdownError,
  type SourceContext,
  type SourceMessage,
} from '@connector/core';

/** How the test context answers one delivery: an outcome, now or later. */
export type Answer = DeliveryOutcome | Promise<DeliveryOutcome>;

/** Decides the outcome of each delivery; `n` counts deliveries from 1. */
export type Answerer = (message: SourceMessage, n: number) => Answer;

/** Where one delivery is: waiting for capacity, being answered, or settled one way or another. */
export type DeliveryState = 'queued' | 'open' | 'acked' | 'nacked' | 'rejected';

/** One `deliver` call as the test context saw it. */
export interface TestDelivery {
  /** The message passed to `deliver`. */
  readonly message: SourceMessage;
  /** Its body as UTF-8. */
  readonly body: string;
  /** 1 for the first `deliver` call. */
  readonly n: number;
  /** Current state (`rejected`: with ShutdownError, or an error the answerer threw). */
  readonly state: DeliveryState;
  /** The outcome it settled with. */
  readonly outcome?: DeliveryOutcome;
  /** The error it was rejected with. */
  readonly error?: unknown;
}

/** Options of `createTestContext`. */
export interface TestContextOptions {
  /** Topics the functions subscribe to (default none). */
  topics?: readonly string[];
  /** Functions known (default none). */
  functions?: readonly FunctionInfo[];
  /** Outcome of each delivery (default: delivered and acked at once). See `outcomes`, `hold`. */
  answer?: Answerer;
  /** Deliveries answered at a time, like the engine's `maxInFlight`; more wait in a queue (default unlimited). */
  capacity?: number;
  /** Logger handed to the source (default: none). */
  logger?: Logger;
}

/** A fake `SourceContext` (the connector's side of a source) that records deliveries and answers as told. */
export interface TestContext extends SourceContext {
  /** Every message passed to `deliver`, in call order (those refused after `close()` too). */
  readonly messages: readonly SourceMessage[];
  /** Every `deliver` call with its state. */
  readonly deliveries: readonly TestDelivery[];
  /** Bodies (UTF-8) of deliveries settled with `ack: true`, in settle order. */
  readonly acked: readonly string[];
  /** Bodies (UTF-8) of deliveries settled with `ack: false` (the source must not ack these). */
  readonly nacked: readonly string[];
  /** Errors the source passed to `fail()`. */
  readonly failures: readonly unknown[];
  /** True after `close()` or `shutdown()`. */
  readonly closed: boolean;
  /** Bodies (UTF-8) of every message passed to `deliver`. */
  bodies(): string[];
  /** Deliveries not settled yet (queued for capacity or being answered). */
  open(): number;
  /** Answer later deliveries with `answer`. */
  setAnswer(answer: Answerer): void;
  /** Settle every unsettled delivery now with `outcome`, or reject it with `outcome` when it is an Error; returns how many. */
  settle(outcome: DeliveryOutcome | Error): number;
  /** Change the capacity (0: `hasCapacity()` stays false and deliveries queue up until it grows). */
  setCapacity(capacity: number): void;
  /** Replace the topic list and notify the `onTopicsChange` listeners. */
  setTopics(topics: readonly string[]): void;
  /** Replace the function list and notify the `onFunctionsChange` listeners. */
  setFunctions(functions: readonly FunctionInfo[]): void;
  /** Listeners currently registered (a stopped source should have removed its own). */
  listeners(): { topics: number; functions: number };
  /** What a graceful connector stop does first: abort `signal`, refuse new deliveries; unsettled ones still settle. */
  close(): void;
  /** What a hard stop (`connector.kill()`) does: `close()`, then reject every unsettled delivery with ShutdownError. */
  shutdown(): void;
}

const utf8 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');

/** Outcomes to answer deliveries with. */
export const outcomes = {
  /** Every function succeeded: ack. `body` becomes the one result's response body. */
  delivered(body?: string, fn = 'fn.openfaas-fn'): DeliveryOutcome {
    const results =
      body === undefined
        ? []
        : [
            {
              topic: '',
              function: fn,
              status: 200,
              headers: { 'content-type': 'text/plain' },
              body: Buffer.from(body),
              duration: 1,
              async: false,
              attempt: 1,
              final: true,
            },
          ];
    return { status: 'delivered', ack: true, results };
  },
  /** A function failed after its retries, redeliver mode: do not ack. */
  failed(): DeliveryOutcome {
    return { status: 'failed', ack: false, results: [] };
  },
  /** A function failed and was dead-lettered: ack. */
  deadLettered(): DeliveryOutcome {
    return { status: 'dead-lettered', ack: true, results: [] };
  },
  /** No function subscribes to the topic: ack. */
  unrouted(): DeliveryOutcome {
    return { status: 'unrouted', ack: true, results: [] };
  },
};

/** An answerer that never answers by itself: deliveries stay open until `ctx.settle(...)` or `ctx.shutdown()`. */
export const hold: Answerer = () => new Promise<never>(() => undefined);

/** A promise with its resolve and reject functions, to hold a delivery open until the test decides. */
export function deferred<T>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

interface Entry extends TestDelivery {
  state: DeliveryState;
  outcome?: DeliveryOutcome;
  error?: unknown;
  resolve(outcome: DeliveryOutcome): void;
  reject(err: unknown): void;
}

/** Create a fake `SourceContext` for driving a source without a connector (see `TestContext`). */
export function createTestContext(options: TestContextOptions = {}): TestContext {
  let topics = options.topics ?? [];
  let functions = options.functions ?? [];
  let answer = options.answer ?? (() => outcomes.delivered());
  let capacity = options.capacity ?? Number.POSITIVE_INFINITY;
  const abort = new AbortController();
  const topicListeners = new Set<(t: readonly string[]) => void>();
  const functionListeners = new Set<(f: readonly FunctionInfo[]) => void>();
  const capacityWaiters = new Set<() => void>();
  const messages: SourceMessage[] = [];
  const deliveries: Entry[] = [];
  const acked: string[] = [];
  const nacked: string[] = [];
  const failures: unknown[] = [];
  const queue: Entry[] = [];
  const answering = new Set<Entry>();
  let closed = false;
  let settling = false;

  const hasCapacity = () => answering.size + queue.length < capacity;

  const finish = (e: Entry, result: { outcome: DeliveryOutcome } | { error: unknown }) => {
    if (e.state !== 'open' && e.state !== 'queued') return;
    answering.delete(e);
    const q = queue.indexOf(e);
    if (q >= 0) queue.splice(q, 1);
    if ('outcome' in result) {
      e.outcome = result.outcome;
      e.state = result.outcome.ack ? 'acked' : 'nacked';
      (result.outcome.ack ? acked : nacked).push(e.body);
      e.resolve(result.outcome);
    } else {
      e.error = result.error;
      e.state = 'rejected';
      e.reject(result.error);
    }
    pump();
  };

  const begin = (e: Entry) => {
    e.state = 'open';
    answering.add(e);
    let answered: Answer;
    try {
      answered = answer(e.message, e.n);
    } catch (error) {
      finish(e, { error });
      return;
    }
    Promise.resolve(answered).then(
      (outcome) => finish(e, { outcome }),
      (error: unknown) => finish(e, { error }),
    );
  };

  function pump(): void {
    if (settling) return;
    while (queue.length > 0 && answering.size < capacity) {
      const next = queue.shift() as Entry;
      begin(next);
    }
    if (hasCapacity() || closed) {
      for (const w of [...capacityWaiters]) w();
    }
  }

  const ctx: TestContext = {
    messages,
    deliveries,
    acked,
    nacked,
    failures,
    get closed() {
      return closed;
    },
    deliver(message) {
      messages.push(message);
      let resolve!: (o: DeliveryOutcome) => void;
      let reject!: (err: unknown) => void;
      const promise = new Promise<DeliveryOutcome>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      const e: Entry = {
        message,
        body: utf8(message.body),
        n: messages.length,
        state: 'queued',
        resolve,
        reject,
      };
      deliveries.push(e);
      if (closed) {
        e.state = 'rejected';
        e.error = new ShutdownError();
        reject(e.error);
        return promise;
      }
      if (answering.size < capacity && queue.length === 0) begin(e);
      else queue.push(e);
      return promise;
    },
    hasCapacity,
    waitForCapacity(signal) {
      if (hasCapacity() || closed || signal?.aborted) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          capacityWaiters.delete(done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        capacityWaiters.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    },
    topics: () => topics,
    onTopicsChange(listener) {
      topicListeners.add(listener);
      return () => void topicListeners.delete(listener);
    },
    functions: () => functions,
    onFunctionsChange(listener) {
      functionListeners.add(listener);
      return () => void functionListeners.delete(listener);
    },
    fail(error) {
      failures.push(error);
    },
    logger: options.logger ?? noopLogger,
    signal: abort.signal,
    bodies: () => messages.map((m) => utf8(m.body)),
    open: () => answering.size + queue.length,
    setAnswer(next) {
      answer = next;
    },
    settle(outcome) {
      const unsettled = [...queue, ...answering];
      settling = true; // settle exactly these: none of the queued ones starts being answered meanwhile
      try {
        for (const e of unsettled) finish(e, outcome instanceof Error ? { error: outcome } : { outcome });
      } finally {
        settling = false;
      }
      pump();
      return unsettled.length;
    },
    setCapacity(next) {
      capacity = next;
      pump();
    },
    setTopics(next) {
      topics = next;
      for (const l of [...topicListeners]) l(next);
    },
    setFunctions(next) {
      functions = next;
      for (const l of [...functionListeners]) l(next);
    },
    listeners: () => ({ topics: topicListeners.size, functions: functionListeners.size }),
    close() {
      if (closed) return;
      closed = true;
      abort.abort();
      for (const w of [...capacityWaiters]) w();
    },
    shutdown() {
      ctx.close();
      ctx.settle(new ShutdownError());
    },
  };
  return ctx;
}
