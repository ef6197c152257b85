import type { Invoker } from './invoker.js';
import type { FunctionPolicy } from './policy.js';
import type { Semaphore } from './semaphore.js';
import type { BatchItem, FunctionInfo, InvokeOptions, InvokeResult } from './types.js';

/** An item waiting for its batch, with the attempt's promise to settle. */
interface Waiting {
  readonly item: BatchItem;
  resolve(r: InvokeResult): void;
  reject(err: unknown): void;
}

/**
 * The batches of one function (`connector.dev/batch-size` > 1): the engine's attempt step hands it one item per
 * message attempt; it sends them together when the batch is full (`batch-size`), when the next item would take it
 * over `batch-bytes` (sum of the bodies; a larger item goes alone), or when the first item has waited
 * `batch-window`. Each attempt then settles with its own result, and retries come back through `add` like first
 * attempts (so they join a later batch). A batch takes one of the function's own slots while it is in flight.
 */
export class Batcher {
  private waiting: Waiting[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private policy: FunctionPolicy | undefined;

  constructor(
    private target: FunctionInfo,
    private readonly invoker: Pick<Invoker, 'invokeBatch'>,
    /** The function's own slots (its `max-inflight`), when it has a limit. */
    private readonly slots: (policy: FunctionPolicy) => Semaphore | undefined,
  ) {}

  /** Items waiting for their batch to be sent. */
  get size(): number {
    return this.waiting.length;
  }

  /** Add one message attempt; resolves with its result when its batch has been answered. */
  add(target: FunctionInfo, item: BatchItem, policy: FunctionPolicy): Promise<InvokeResult> {
    // A rebuild may bring a new entry (and policy) for the same function: the latest one applies.
    this.target = target;
    this.policy = policy;
    const limits = policy.batch ?? { size: 1, bytes: Number.POSITIVE_INFINITY, window: 0 };
    const n = item.body.byteLength;
    return new Promise<InvokeResult>((resolve, reject) => {
      const w: Waiting = { item, resolve, reject };
      if (n > limits.bytes) {
        this.send([w], policy); // alone: no batch can hold it
        return;
      }
      if (this.waiting.length > 0 && this.bytes + n > limits.bytes) this.flush();
      this.waiting.push(w);
      this.bytes += n;
      if (this.waiting.length >= limits.size) this.flush();
      else if (this.timer === undefined) this.timer = setTimeout(() => this.flush(), limits.window);
    });
  }

  /** Send what is waiting now. */
  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.waiting.length === 0) return;
    const batch = this.waiting;
    this.waiting = [];
    this.bytes = 0;
    this.send(batch, this.policy as FunctionPolicy);
  }

  /** Fail every waiting item with `err` (a hard stop); batches in flight are the invoker's. */
  abort(err: Error): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.waiting;
    this.waiting = [];
    this.bytes = 0;
    for (const w of batch) w.reject(err);
  }

  private send(batch: Waiting[], policy: FunctionPolicy): void {
    const slots = this.slots(policy);
    const options: InvokeOptions = { retryOn: policy.retryOn };
    if (policy.timeout !== undefined) options.timeout = policy.timeout;
    const target = this.target;
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
            for (let i = 0; i < batch.length; i++) (batch[i] as Waiting).resolve(results[i] as InvokeResult);
          },
          (err: unknown) => {
            slots?.release();
            for (const w of batch) w.reject(err);
          },
        );
    if (slots === undefined || slots.tryAcquire()) void run();
    else
      slots.acquire().then(run, (err: unknown) => {
        for (const w of batch) w.reject(err);
      });
  }
}
