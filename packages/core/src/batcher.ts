import { InvokeError } from './errors.js';
import type { Invoker } from './invoker.js';
import type { FunctionPolicy } from './policy.js';
import type { Semaphore } from './semaphore.js';
import type { BatchItem, FunctionInfo, InvokeOptions, InvokeResult } from './types.js';

/** Where an ordered message stands in its key's line. */
type State = 'parked' | 'batched' | 'sent' | 'away';

/** One message (its token: the engine's job) of an ordering key, from its first attempt until its final result. */
interface Entry {
  readonly token: object;
  readonly line: Entry[];
  readonly key: string;
  state: State;
  /** The attempt waiting to be batched (while `parked` or `batched`). */
  waiting: Waiting | undefined;
}

/** An item waiting for its batch, with what the caller passed along with it (handed back with its result). */
interface Waiting {
  readonly item: BatchItem;
  readonly entry: Entry | undefined;
  readonly context: unknown;
}

/** The order of an attempt: its message's ordering key, and a token that stays the same across its attempts. */
export interface BatchOrder {
  readonly key: string;
  readonly token: object;
}

/** Where each item's outcome goes: its result once its batch is answered, or the error that ended it (the batch
 * request threw, or a hard stop); with the `context` it was added with. Called once per `add`. */
export interface BatchCallbacks {
  result(context: unknown, item: BatchItem, result: InvokeResult): void;
  error(context: unknown, err: unknown): void;
}

/**
 * The batches of one function (`connector.dev/batch-size` > 1): the engine's attempt step hands it one item per
 * message attempt (no promise each: the outcome comes back through `BatchCallbacks`); it sends them together when
 * the batch is full (`batch-size`), when the next item would take it over `batch-bytes` (sum of the bodies; a
 * larger item goes alone), or when the first item has waited
 * `batch-window`. Each attempt then settles with its own result, and retries come back through `add` like first
 * attempts (so they join a later batch). A batch takes one of the function's own slots while it is in flight.
 *
 * Ordering keys: the messages of one key form a line, in first-attempt order. A message joins a batch only behind
 * the earlier messages of its key that are in the same batch, never while one of them is in flight in another
 * batch or failed and waiting for its retry (or its final result: `release`). In an answer, the items of a key after
 * a failed one are held back (`ERR_BATCH_ITEM_HELD`, which spends no attempt) and go again behind it.
 */
export class Batcher {
  private waiting: Waiting[] = [];
  private bytes = 0;
  /** The window's timer. A flush does not clear it (a batch that fills up would cost a timer each): it stays
   * pending and is re-armed (`refresh`) for the next batch; `due` says whether the forming batch is waiting on it. */
  private timer: NodeJS.Timeout | undefined;
  private timerWindow = 0;
  private due = false;
  private policy: FunctionPolicy | undefined;
  private readonly lines = new Map<string, Entry[]>();
  private readonly entries = new Map<object, Entry>();
  private draining = false;

  constructor(
    private target: FunctionInfo,
    private readonly invoker: Pick<Invoker, 'invokeBatch'>,
    /** The function's own slots (its `max-inflight`), when it has a limit. */
    private readonly slots: (policy: FunctionPolicy) => Semaphore | undefined,
    /** Where each item's result (or error) goes, with its context (the engine's attempt step). */
    private readonly on: BatchCallbacks,
  ) {}

  /** Add one message attempt; once its batch has been answered, `on.result` gets its result (or `on.error` the
   * error that ended it), with `context`. */
  add(
    target: FunctionInfo,
    item: BatchItem,
    policy: FunctionPolicy,
    order?: BatchOrder,
    context?: unknown,
  ): void {
    // A rebuild may bring a new entry (and policy) for the same function: the latest one applies.
    this.target = target;
    this.policy = policy;
    try {
      this.place(item, context, order);
    } catch (err) {
      this.on.error(context, err);
    }
  }

  /** Into the forming batch, or (with an ordering key) into its key's line, from where `advance` moves it. */
  private place(item: BatchItem, context: unknown, order: BatchOrder | undefined): void {
    if (order === undefined) {
      this.enqueue({ item, entry: undefined, context });
      return;
    }
    let entry = this.entries.get(order.token);
    if (entry === undefined) {
      let line = this.lines.get(order.key);
      if (line === undefined) this.lines.set(order.key, (line = []));
      entry = { token: order.token, line, key: order.key, state: 'parked', waiting: undefined };
      line.push(entry);
      this.entries.set(order.token, entry);
    }
    entry.state = 'parked';
    entry.waiting = { item, entry, context };
    this.advance(entry.line);
  }

  /** The message of `token` has its final result: the later messages of its key may go. */
  release(token: object): void {
    const entry = this.entries.get(token);
    if (entry === undefined) return;
    this.remove(entry);
    this.advance(entry.line);
  }

  /** From now on send every item at once, with what is waiting (the connector is stopping: no window to wait). */
  drain(): void {
    this.draining = true;
    this.flush();
    this.stopTimer();
  }

  /** Send what is waiting now. */
  flush(): void {
    this.due = false;
    if (this.waiting.length === 0) return;
    const batch = this.waiting;
    this.waiting = [];
    this.bytes = 0;
    this.send(batch);
  }

  /** Fail every waiting or parked item with `err` (a hard stop); batches in flight are the invoker's. */
  abort(err: Error): void {
    this.due = false;
    this.stopTimer();
    const failed = this.waiting.map((w) => w.context);
    for (const e of this.entries.values())
      if (e.state === 'parked' && e.waiting !== undefined) failed.push(e.waiting.context);
    this.waiting = [];
    this.bytes = 0;
    this.entries.clear();
    this.lines.clear();
    // Only now: an error handler that releases its message finds no line left to move on (nothing is sent).
    for (const context of failed) this.on.error(context, err);
  }

  /** The forming batch waits `window` ms from now at most (its first item has just come). */
  private startWindow(window: number): void {
    this.due = true;
    if (this.timer !== undefined && this.timerWindow === window) {
      this.timer.refresh();
      return;
    }
    this.stopTimer();
    this.timerWindow = window;
    this.timer = setTimeout(() => this.flush(), window); // nothing to do when it went off for a batch that filled up
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private limits() {
    return this.policy?.batch ?? { size: 1, bytes: Number.POSITIVE_INFINITY, window: 0 };
  }

  /** Move the parked messages at the head of a key's line into the forming batch, in order. */
  private advance(line: Entry[]): void {
    for (let i = 0; i < line.length; i++) {
      const e = line[i] as Entry;
      if (e.state === 'batched') continue;
      if (e.state !== 'parked' || !this.enqueue(e.waiting as Waiting)) return;
      if ((e.state as State) === 'sent') return; // its batch went: the rest of the line waits for its answer
    }
  }

  /** Into the forming batch (or alone, when larger than a batch may be); false when an earlier message of its key
   * was just sent ahead of it, so it must wait for that batch's answer. */
  private enqueue(w: Waiting): boolean {
    const limits = this.limits();
    const n = w.item.body.byteLength;
    const alone = n > limits.bytes;
    // Earlier messages of its key are in the forming batch: a message going alone must not overtake them.
    const behind = w.entry !== undefined && w.entry.line[0] !== w.entry;
    if (this.waiting.length > 0 && (alone ? behind : this.bytes + n > limits.bytes)) {
      this.flush();
      if (behind) return false; // they were just sent: it waits for their answer
    }
    if (w.entry !== undefined) {
      w.entry.state = 'batched';
      w.entry.waiting = undefined;
    }
    if (alone) {
      this.send([w]); // no batch can hold it
      return true;
    }
    this.waiting.push(w);
    this.bytes += n;
    if (this.waiting.length >= limits.size || this.draining) this.flush();
    else if (!this.due) this.startWindow(limits.window);
    return true;
  }

  private remove(entry: Entry): void {
    this.entries.delete(entry.token);
    const i = entry.line.indexOf(entry);
    if (i >= 0) entry.line.splice(i, 1);
    if (entry.line.length === 0 && this.lines.get(entry.key) === entry.line) this.lines.delete(entry.key);
  }

  private send(batch: Waiting[]): void {
    for (const w of batch) if (w.entry !== undefined) w.entry.state = 'sent';
    const policy = this.policy as FunctionPolicy;
    const slots = this.slots(policy);
    const options: InvokeOptions = { retryOn: policy.retryOn };
    if (policy.timeout !== undefined) options.timeout = policy.timeout;
    const target = this.target;
    const fail = (err: unknown) => {
      for (const w of batch) {
        if (w.entry !== undefined) w.entry.state = 'away';
        this.on.error(w.context, err);
      }
    };
    const run = () =>
      this.invoker
        .invokeBatch(
          target,
          batch.map((w) => w.item),
          options,
        )
        .then(
          (results) => {
            slots?.release();
            this.answered(batch, results);
          },
          (err: unknown) => {
            slots?.release();
            fail(err);
          },
        );
    if (slots === undefined || slots.tryAcquire()) void run();
    else slots.acquire().then(run, fail);
  }

  /** Settle each attempt of an answered batch; behind a failed item, the later items of its key are held back. Each
   * goes to `on.result` once the lines are up to date (so a held item added again finds its line as it is). */
  private answered(batch: Waiting[], results: InvokeResult[]): void {
    const failedKeys = new Map<string, number>();
    const lines = new Set<Entry[]>();
    for (let i = 0; i < batch.length; i++) {
      const w = batch[i] as Waiting;
      let r = results[i] as InvokeResult;
      const entry = w.entry;
      if (entry !== undefined) {
        const first = failedKeys.get(entry.key);
        if (first !== undefined && r.error === undefined)
          r = {
            ...r,
            error: new InvokeError(
              'ERR_BATCH_ITEM_HELD',
              `batch item ${i} held back behind failed item ${first} of its ordering key`,
              r.status,
            ),
          };
        if (r.error === undefined) this.remove(entry);
        else {
          if (first === undefined) failedKeys.set(entry.key, i);
          entry.state = 'away';
        }
        lines.add(entry.line);
        results[i] = r;
      }
    }
    for (const line of lines) this.advance(line);
    const on = this.on;
    for (let i = 0; i < batch.length; i++) {
      const w = batch[i] as Waiting;
      try {
        on.result(w.context, w.item, results[i] as InvokeResult);
      } catch (err) {
        on.error(w.context, err);
      }
    }
  }
}
