import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkDeadLetterFile,
  type DeadLetter,
  fileDeadLetters,
  logDeadLetters,
} from '../src/dead-letters.js';
import { ConfigError, InvokeError } from '../src/errors.js';
import type { Logger } from '../src/types.js';

const letter = (over: Partial<DeadLetter['message']> = {}): DeadLetter => ({
  message: { topic: 't', body: new TextEncoder().encode('héllo'), id: 'm1', key: 'k1', ...over },
  function: 'fn.openfaas-fn',
  result: {
    topic: 't',
    function: 'fn.openfaas-fn',
    status: 500,
    headers: {},
    body: new Uint8Array(0),
    duration: 1,
    async: false,
    attempt: 4,
    final: true,
    error: new InvokeError('ERR_INVOKE_STATUS', 'answered 500', 500),
  },
  source: 'src',
  reason: 'answered 500',
});

function recorder(): { logger: Logger; lines: { level: string; obj: unknown; msg: unknown }[] } {
  const lines: { level: string; obj: unknown; msg: unknown }[] = [];
  const at =
    (level: string) =>
    (obj: unknown, msg?: unknown): void => {
      lines.push({ level, obj, msg });
    };
  const logger: Logger = {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
    child: () => logger,
  };
  return { logger, lines };
}

describe('logDeadLetters', () => {
  it('warns once per letter with what identifies it, the body only when asked', () => {
    const { logger, lines } = recorder();
    logDeadLetters(logger)(letter());
    logDeadLetters(logger, true)(letter());
    expect(lines).toEqual([
      {
        level: 'warn',
        msg: 'dead letter',
        obj: {
          function: 'fn.openfaas-fn',
          topic: 't',
          id: 'm1',
          key: 'k1',
          status: 500,
          attempts: 4,
          reason: 'answered 500',
        },
      },
      expect.objectContaining({
        level: 'warn',
        obj: expect.objectContaining({ body: 'héllo', attempts: 4 }),
      }),
    ]);
  });
});

describe('fileDeadLetters', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('appends one JSON line per letter, in order: body and byte headers base64, text headers as they are', async () => {
    dir = await mkdtemp(join(tmpdir(), 'dl-'));
    const path = join(dir, 'letters.jsonl');
    const h = fileDeadLetters(path);
    const before = Date.now();
    await Promise.all([
      h(letter({ headers: { 'x-text': 'v', 'x-bin': new Uint8Array([0, 255]) } })),
      h(letter({ id: 'm2' })),
    ]);
    const lines = (await readFile(path, 'utf8')).split('\n');
    expect(lines.at(-1)).toBe('');
    const [a, b] = lines.slice(0, -1).map((l) => JSON.parse(l));
    expect(a).toEqual({
      at: expect.any(String),
      source: 'src',
      topic: 't',
      function: 'fn.openfaas-fn',
      id: 'm1',
      key: 'k1',
      headers: { 'x-text': 'v', 'x-bin': 'base64:AP8=' },
      status: 500,
      attempts: 4,
      reason: 'answered 500',
      bodyBase64: Buffer.from('héllo').toString('base64'),
    });
    expect(Date.parse(a.at)).toBeGreaterThanOrEqual(before - 1000);
    expect(b.id).toBe('m2');
    expect('headers' in b).toBe(false);
  });

  it('a failed write fails only its own letter; the next one is still written', async () => {
    dir = await mkdtemp(join(tmpdir(), 'dl-'));
    // The path is a directory: appendFile fails (EISDIR) ...
    const bad = fileDeadLetters(dir);
    await expect(bad(letter())).rejects.toThrow();
    await expect(bad(letter())).rejects.toThrow();
    // ... and a handler whose first write fails goes on writing later letters once the path works.
    const path = join(dir, 'later', 'x.jsonl');
    const h = fileDeadLetters(path);
    await expect(h(letter())).rejects.toThrow(); // directory missing
    await mkdir(join(dir, 'later'));
    await h(letter({ id: 'ok' }));
    expect(JSON.parse(await readFile(path, 'utf8')).id).toBe('ok');
  });
});

describe('checkDeadLetterFile', () => {
  it('passes for a file in a writable directory, says why otherwise', async () => {
    await expect(checkDeadLetterFile(join(tmpdir(), 'x.jsonl'))).resolves.toBeUndefined();
    const missing = checkDeadLetterFile('/nonexistent-dir-for-test/x.jsonl');
    await expect(missing).rejects.toBeInstanceOf(ConfigError);
    await expect(missing).rejects.toThrow(
      'invalid dead_letter_file="/nonexistent-dir-for-test/x.jsonl": expected a file in a writable directory (the directory does not exist: /nonexistent-dir-for-test)',
    );
    // A regular file as the "directory" (ENOTDIR): not writable as a directory, whoever runs the test (root too).
    const d = await mkdtemp(join(tmpdir(), 'dl-'));
    try {
      await writeFile(join(d, 'file'), '');
      await expect(checkDeadLetterFile(join(d, 'file', 'sub', 'x.jsonl'))).rejects.toThrow(
        `expected a file in a writable directory (the directory is not writable: ${join(d, 'file', 'sub')})`,
      );
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });
});
