import type { Semaphore } from './semaphore.js';

/** Where an adaptive limit starts: low, so a new function is probed rather than flooded. */
export const ADAPTIVE_START = 2;

/**
 * Adaptive concurrency for one function, AIMD: the limit grows by one after a window of `limit` successes, and is
 * cut to three quarters (at most once per window) when the function signals overload — 429, 503 or a deadline.
 * AIMD, not a gradient limiter: it needs no latency baseline (OpenFaaS functions' latency varies by payload) and
 * reacts to the signal a function or the gateway gives explicitly; three quarters instead of the classic half keeps
 * the limit near a hard cap such as `max_inflight` instead of oscillating down to half of it.
 */
export class AdaptiveLimit {
  private successes = 0;
  private sinceDecrease = Number.POSITIVE_INFINITY; // the first overload signal cuts at once

  constructor(
    private readonly slots: Semaphore,
    readonly max: number,
  ) {}

  /** The current limit. */
  get limit(): number {
    return this.slots.limit;
  }

  /** The function answered in time. */
  success(): void {
    this.sinceDecrease++;
    if (++this.successes >= this.slots.limit && this.slots.limit < this.max) {
      this.successes = 0;
      this.slots.setLimit(this.slots.limit + 1);
    }
  }

  /** The function (or the gateway for it) signalled overload. */
  overload(): void {
    if (this.sinceDecrease < this.slots.limit) return; // one cut per window: a burst of 429s is one signal
    this.sinceDecrease = 0;
    this.successes = 0;
    this.slots.setLimit(Math.max(1, Math.floor(this.slots.limit * 0.75)));
  }
}
