import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const server = join(import.meta.dirname, '../dist/server.js');

/** The bench gateway as `pnpm bench` starts it: stdin a pipe, `BENCH_EXIT_WITH_PARENT=1`; resolves once listening. */
async function startGateway(env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [server], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`bench gateway exited with ${code} before listening`)));
  });
  return { child, exited, port };
}

// A bench that dies (killed, Ctrl-C twice) closes its end of the gateway's stdin: the gateway must not outlive it.
describe('bench gateway', () => {
  it('exits once its stdin ends when started by the bench', async () => {
    const { child, exited } = await startGateway({ BENCH_EXIT_WITH_PARENT: '1' });
    child.stdin.end();
    expect(await exited).toBe(0);
  });

  it('keeps running on a closed stdin when started by hand (no BENCH_EXIT_WITH_PARENT)', async () => {
    const { child, exited, port } = await startGateway({ BENCH_EXIT_WITH_PARENT: '' });
    child.stdin.end();
    // Still answering after its stdin ended (nothing listens to it).
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect(child.exitCode).toBeNull();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
