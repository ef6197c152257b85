/** Tracks promises a source started (deliveries, acks, flushes) so `stop()` can wait for all of them. */
export class InFlight {
  private readonly running = new Set<Promise<unknown>>();

  /** Promises not settled yet. */
  get size(): number {
    return this.running.size;
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

  /** Resolves once nothing tracked is running, including what was tracked while waiting. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}
