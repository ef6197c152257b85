import type { Logger } from '@connector/core';

/** A line a memory logger recorded. */
export interface LogLine {
  level: string;
  obj: unknown;
  msg?: string | undefined;
}

/** A Logger that keeps every line (children included) in `lines`. */
export function memoryLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const make = (): Logger => {
    const at = (level: string) => (obj: object | string, msg?: string) =>
      void lines.push({ level, obj, msg });
    return {
      trace: at('trace'),
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      fatal: at('fatal'),
      child: () => make(),
    };
  };
  return Object.assign(make(), { lines });
}

/** Poll `cond` every 10 ms until it holds, or fail after `timeout` ms naming `what`. */
export async function waitFor(cond: () => boolean, what: string, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
