/** A stack of cleanups: `run()` calls them in reverse order of `add`, every one, then throws what failed. */
export interface Cleanups {
  /** Register a cleanup (sync or async); the last added runs first. */
  add(cleanup: () => unknown): void;
  /** Register `close(value)` as a cleanup and return `value` (`const g = c.use(await startGateway(), (g) => g.close())`). */
  use<T>(value: T, close: (value: T) => unknown): T;
  /** Cleanups registered and not run yet. */
  readonly size: number;
  /**
   * Run every cleanup, last added first, each once, including those a cleanup adds while running. Every one runs
   * even when an earlier one fails; then the failure is thrown (one error as it is, several as an AggregateError).
   */
  run(): Promise<void>;
}

/** A new, empty cleanup stack (typically `afterEach(() => cleanup.run())`). */
export function cleanups(): Cleanups {
  const stack: (() => unknown)[] = [];
  return {
    add(cleanup) {
      stack.push(cleanup);
    },
    use(value, close) {
      stack.push(() => close(value));
      return value;
    },
    get size() {
      return stack.length;
    },
    async run() {
      const errors: unknown[] = [];
      for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
        try {
          await next();
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new AggregateError(errors, `${errors.length} cleanups failed`);
    },
  };
}
