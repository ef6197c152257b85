import { setTimeout as wait } from 'node:timers/promises';

/**
 * Wait `ms`, or less when `signal` aborts. Resolves `true` when the full time passed, `false` when aborted; never
 * rejects and leaves no listener behind on `signal` (node:timers/promises removes its own).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  if (signal === undefined) return wait(ms).then(() => true);
  return wait(ms, undefined, { signal }).then(
    () => true,
    () => false,
  );
}
