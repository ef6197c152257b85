import { access, appendFile, constants } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError } from './errors.js';
import type { SourceMessage } from './source.js';
import type { InvokeResult, Logger } from './types.js';

/** A message whose function still failed after every retry. */
export interface DeadLetter {
  /** The message as the source delivered it. */
  readonly message: SourceMessage;
  /** Address of the function that failed. */
  readonly function: string;
  /** The last attempt's result. */
  readonly result: InvokeResult;
  /** Name of the source. */
  readonly source: string;
  /** Why it failed (error message). */
  readonly reason: string;
}

/** Receives dead letters; a rejection leaves the message un-acked (it is redelivered, not lost). */
export type DeadLetterHandler = (letter: DeadLetter) => void | Promise<void>;

/** Built-in dead-letter handler: one warn line per letter (body only when `printBody`). */
export function logDeadLetters(logger: Logger, printBody = false): DeadLetterHandler {
  return (l) => {
    logger.warn(
      {
        function: l.function,
        topic: l.message.topic,
        id: l.message.id,
        key: l.message.key,
        status: l.result.status,
        attempts: l.result.attempt,
        reason: l.reason,
        ...(printBody ? { body: Buffer.from(l.message.body).toString('utf8') } : {}),
      },
      'dead letter',
    );
  };
}

/** Headers of a dead letter as JSON can hold them (raw bytes as base64). */
function jsonHeaders(h: SourceMessage['headers']): Record<string, string> | undefined {
  if (h === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const k in h) {
    const v = h[k];
    out[k] = typeof v === 'string' ? v : `base64:${Buffer.from(v as Uint8Array).toString('base64')}`;
  }
  return out;
}

/**
 * Built-in dead-letter handler: appends one JSON line per letter to `path` (body base64). Writes are in order, and
 * each is independent: one failed write fails only its own letter (that message stays un-acked), not the next.
 */
export function fileDeadLetters(path: string): DeadLetterHandler {
  let last: Promise<void> = Promise.resolve();
  return (l) => {
    const line = `${JSON.stringify({
      at: new Date().toISOString(),
      source: l.source,
      topic: l.message.topic,
      function: l.function,
      id: l.message.id,
      key: l.message.key,
      headers: jsonHeaders(l.message.headers),
      status: l.result.status,
      attempts: l.result.attempt,
      reason: l.reason,
      bodyBase64: Buffer.from(l.message.body).toString('base64'),
    })}\n`;
    const write = last.then(() => appendFile(path, line));
    last = write.catch(() => undefined);
    return write;
  };
}

/** Check at start that a dead-letter file can be written: its directory exists and is writable. */
export async function checkDeadLetterFile(path: string): Promise<void> {
  const dir = dirname(path);
  try {
    await access(dir, constants.W_OK);
  } catch (err) {
    const why =
      (err as { code?: string }).code === 'ENOENT'
        ? 'the directory does not exist'
        : 'the directory is not writable';
    throw ConfigError.invalid('dead_letter_file', path, `a file in a writable directory (${why}: ${dir})`);
  }
}
