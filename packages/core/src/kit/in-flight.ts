/**
 * Tracks what a source started (deliveries, acks, flushes) so `stop()` can wait for all of it: promises (`track`),
 * or, where a promise per message is too dear, counted work (`enter` / `leave`).
 */
export class InFlight {
  private readonly running = new Set<Promise<unknown>>();
  private counted = 0;
  private countWaiters: (() => void)[] = [];

  /** Promises not settled yet, plus counted work not left yet. */
  get size(): number {
    return this.running.size + this.counted;
  }

  /** Track `p` until it settles; returns `p`. Its rejection is not swallowed for the caller, only for the tracker. */
  track<T>(p: Promise<T>): Promise<T> {
    this.running.add(p);
    const forget = () => {
      this.running.delete(p);
    };
    p.then(forget, forget);
    return p;
  }

  /** Count one piece of work that started; call `leave()` exactly once when it ends. */
  enter(): void {
    this.counted++;
  }

  /** One piece of counted work ended (see `enter`). */
  leave(): void {
    if (--this.counted > 0 || this.countWaiters.length === 0) return;
    const ws = this.countWaiters;
    this.countWaiters = [];
    for (const w of ws) w();
  }

  /** Resolves once nothing tracked or counted is running, including what started while waiting. */
  async idle(): Promise<void> {
    while (this.size > 0) {
      if (this.running.size > 0) await Promise.allSettled([...this.running]);
      else await new Promise<void>((resolve) => this.countWaiters.push(resolve));
    }
  }
}
