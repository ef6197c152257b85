interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/** A counting semaphore with a FIFO queue whose waiters can all be rejected at shutdown. */
export class Semaphore {
  active = 0;
  private queue: Waiter[] = [];
  private head = 0;
  constructor(private max: number) {}

  /** Slots in all. */
  get limit(): number {
    return this.max;
  }

  /** Change the number of slots: more wakes waiters now; fewer takes effect as holders release. */
  setLimit(limit: number): void {
    this.max = limit;
    while (this.active < this.max && this.head < this.queue.length) {
      this.active++;
      this.next().resolve();
    }
  }

  private next(): Waiter {
    const w = this.queue[this.head] as Waiter;
    this.queue[this.head++] = undefined as unknown as Waiter;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return w;
  }

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

  /** Give a slot back (hands it to the next waiter, unless the limit was lowered below what is held). */
  release(): void {
    if (this.head < this.queue.length && this.active <= this.max) this.next().resolve();
    else this.active--;
  }

  /** Reject every waiter with `err`. */
  rejectAll(err: Error): void {
    const q = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    for (const w of q) w.reject(err);
  }
}
