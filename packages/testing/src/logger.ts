import type { Logger } from '@connector/core';

/** One line a `memoryLogger` kept. */
export interface LogLine {
  /** pino level name. */
  level: string;
  /** The object passed first (or the message when it was a string). */
  obj: unknown;
  /** The message, when an object came first. */
  msg?: string | undefined;
}

/** A `Logger` that keeps every line (children included) in `lines`, to check what is and is not logged. */
export function memoryLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const make = (): Logger => {
    const at =
      (level: string) =>
      (obj: object | string, msg?: string): void => {
        lines.push({ level, obj, msg });
      };
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
