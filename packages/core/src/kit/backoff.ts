/** Bounds of an exponential back-off, in ms. */
export interface BackoffOptions {
  /** First delay's cap (the delay of attempt 1 is at most this). */
  readonly min: number;
  /** Largest delay. */
  readonly max: number;
  /** Full jitter (random in [0, cap]) when true (default); the cap itself when false. */
  readonly jitter?: boolean;
}

/** Exponential back-off with full jitter: random in [0, min(max, min * 2^(attempt-1))]. */
export function backoff(attempt: number, minDelay: number, maxDelay: number, random = Math.random): number {
  const cap = Math.min(maxDelay, minDelay * 2 ** Math.min(Math.max(attempt, 1) - 1, 30));
  return Math.floor(random() * cap);
}

/** A back-off for a retry loop: `next()` gives the next delay, `reset()` after a success. */
export class Backoff {
  private attempt = 0;
  constructor(private readonly options: BackoffOptions) {}

  /** Delay before the next try, in ms (grows with each call until `reset()`). */
  next(): number {
    this.attempt++;
    const { min, max, jitter = true } = this.options;
    if (jitter) return backoff(this.attempt, min, max);
    return Math.min(max, min * 2 ** Math.min(this.attempt - 1, 30));
  }

  /** Tries failed in a row since the last reset. */
  get failures(): number {
    return this.attempt;
  }

  /** Start again from `min` (call after a success). */
  reset(): void {
    this.attempt = 0;
  }
}
