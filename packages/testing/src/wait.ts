import { inspect } from 'node:util';

/** Options of `waitFor`. */
export interface WaitForOptions {
  /** Give up after this many ms (default 10 s). */
  timeout?: number;
  /** Poll every this many ms (default 10). */
  interval?: number;
  /** What was awaited, for the error (a function is called only on timeout, so it can describe the state then). */
  message?: string | (() => string);
}

/** The error `waitFor` throws when its predicate did not hold in time; `cause` is the predicate's last error. */
export class WaitForTimeoutError extends Error {
  override readonly name = 'WaitForTimeoutError';
  /** Always `ERR_TIMEOUT`. */
  readonly code = 'ERR_TIMEOUT';
}

/**
 * Poll `predicate` until it returns a truthy value (returned) or `timeout` ms pass. A throwing predicate counts as
 * "not yet" (so an `expect(...)` inside works); on timeout the error names what was awaited and the last value or
 * error seen.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const timeout = options.timeout ?? 10_000;
  const interval = options.interval ?? 10;
  const started = Date.now();
  let last: { value: unknown } | { error: unknown } | undefined;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
      last = { value };
    } catch (error) {
      last = { error };
    }
    if (Date.now() - started >= timeout) {
      const what = typeof options.message === 'function' ? options.message() : options.message;
      const seen =
        last === undefined
          ? ''
          : 'error' in last
            ? `; last error: ${last.error instanceof Error ? last.error.message : inspect(last.error)}`
            : `; last value: ${inspect(last.value, { depth: 2, breakLength: Number.POSITIVE_INFINITY })}`;
      throw new WaitForTimeoutError(
        `waitFor timed out after ${timeout} ms${what ? ` waiting for ${what}` : ''}${seen}`,
        last !== undefined && 'error' in last ? { cause: last.error } : undefined,
      );
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}
