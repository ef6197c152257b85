/** Poll `cond` until it returns truthy or `timeout` ms pass; throws with `message` (or the last value) on timeout. */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  opts: { timeout?: number; interval?: number; message?: string | (() => string) } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeout ?? 15_000);
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) {
      const m = typeof opts.message === 'function' ? opts.message() : opts.message;
      throw new Error(`waitFor timed out${m ? `: ${m}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, opts.interval ?? 10));
  }
}
