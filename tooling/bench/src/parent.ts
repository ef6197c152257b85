import { type ChildProcess, spawn } from 'node:child_process';

/** Set in a bench child whose stdin is a pipe from the bench CLI: that pipe closes when the CLI ends, however. */
const TIED = 'BENCH_EXIT_WITH_PARENT';

/** Spawn a bench child (the gateway, a worker) that ends with this process: stdin a pipe from here, `TIED` set. */
export function spawnTied(cmd: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(cmd, args, { env: { ...env, [TIED]: '1' }, stdio: ['pipe', 'pipe', 'inherit'] });
}

/** In a child spawned by `spawnTied`: call `gone` once the bench that started it has ended (even killed). */
export function whenParentGone(gone: () => void): void {
  if (process.env[TIED] !== '1') return; // started by hand: stdin is the user's
  process.stdin.on('end', gone);
  process.stdin.resume();
}
