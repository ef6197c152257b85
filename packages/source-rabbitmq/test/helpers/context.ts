import {
  type DeliveryOutcome,
  type FunctionInfo,
  type Logger,
  noopLogger,
  ShutdownError,
  type SourceContext,
  type SourceMessage,
} from '@connector/core';

/** How the test context answers one delivery. */
export type Answer = DeliveryOutcome | Promise<DeliveryOutcome>;

/** A hand-written SourceContext (the connector's side) that records deliveries and answers as told. */
export interface TestContext extends SourceContext {
  /** Every message passed to deliver, in call order. */
  readonly messages: SourceMessage[];
  /** Bodies (utf8) of the messages whose delivery resolved with ack=true. */
  readonly acked: string[];
  /** Deliveries not settled yet. */
  open(): number;
  /** Replace the topic list and notify listeners. */
  setTopics(topics: string[]): void;
  /** Reject every open delivery with ShutdownError and refuse new ones (what connector.kill() does). */
  shutdown(): void;
}

/** A delivered outcome (ack) with an optional first result body. */
export function delivered(body?: string, fn = 'fn.openfaas-fn'): DeliveryOutcome {
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
}

/** A failed outcome (no ack: redeliver). */
export const failed: DeliveryOutcome = { status: 'failed', ack: false, results: [] };

/** Create a test context; `answer` decides each delivery's outcome (default: delivered at once). */
export function testContext(
  options: { topics?: string[]; answer?: (m: SourceMessage, n: number) => Answer; logger?: Logger } = {},
): TestContext {
  let topics = options.topics ?? [];
  const listeners = new Set<(t: readonly string[]) => void>();
  const abort = new AbortController();
  const messages: SourceMessage[] = [];
  const acked: string[] = [];
  const rejecters = new Set<(e: Error) => void>();
  let closed = false;
  const answer = options.answer ?? (() => delivered());
  return {
    messages,
    acked,
    open: () => rejecters.size,
    deliver(m) {
      if (closed) return Promise.reject(new ShutdownError());
      messages.push(m);
      return new Promise<DeliveryOutcome>((resolve, reject) => {
        const rej = (e: Error) => reject(e);
        rejecters.add(rej);
        Promise.resolve(answer(m, messages.length)).then(
          (o) => {
            if (!rejecters.delete(rej)) return;
            if (o.ack) acked.push(Buffer.from(m.body).toString('utf8'));
            resolve(o);
          },
          (e: unknown) => {
            if (rejecters.delete(rej)) reject(e);
          },
        );
      });
    },
    hasCapacity: () => true,
    waitForCapacity: () => Promise.resolve(),
    topics: () => topics,
    onTopicsChange(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    functions: (): readonly FunctionInfo[] => [],
    onFunctionsChange: () => () => undefined,
    fail: () => undefined,
    logger: options.logger ?? noopLogger,
    signal: abort.signal,
    setTopics(t) {
      topics = t;
      for (const l of listeners) l(t);
    },
    shutdown() {
      closed = true;
      abort.abort();
      for (const r of [...rejecters]) {
        rejecters.delete(r);
        r(new ShutdownError());
      }
    },
  };
}

/** A promise with its resolve function, to hold deliveries open. */
export function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
