import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, delimiter, join } from 'node:path';
import { waitFor } from './wait.js';

// Where distributions put server binaries that are often not on a user's PATH (mosquitto in /usr/sbin).
const EXTRA_DIRS = [
  '/usr/local/sbin',
  '/usr/sbin',
  '/sbin',
  '/usr/local/bin',
  '/opt/homebrew/sbin',
  '/opt/homebrew/bin',
];

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Path of executable `name` on PATH or in the usual sbin/bin folders (a name with a `/` is checked as is), or undefined. */
export function findExecutable(name: string): string | undefined {
  if (name === '') return undefined;
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== ''), ...EXTRA_DIRS];
  return dirs.map((d) => join(d, name)).find(isExecutable);
}

/** Cleanups of the server processes started and not stopped, run if this process exits first. */
const atExit = new Set<() => void>();
let exitHooked = false;

/** Run `cleanup` if this process exits (normally or by `process.exit`) before the returned function is called. */
function untilExit(cleanup: () => void): () => void {
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', () => {
      for (const c of atExit) c();
    });
  }
  atExit.add(cleanup);
  return () => void atExit.delete(cleanup);
}

/** A free TCP port on 127.0.0.1 (listen on 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Whether a TCP connection to `host:port` is accepted now (it is closed at once). */
export function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ port, host });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** Where a server process lives: its port on 127.0.0.1, its temp dir and the config file in it. */
export interface ServerProcessPlace {
  readonly port: number;
  readonly dir: string;
  readonly configFile: string;
}

/** Options of `startServerProcess`. */
export interface ServerProcessOptions {
  /** The program: a name looked up with `findExecutable`, or a path. */
  command: string;
  /** Its arguments (default `['-c', configFile]` with `config`, else none). */
  args?: readonly string[] | ((place: ServerProcessPlace) => readonly string[]);
  /** Content of `configFile`, written once before the first start. */
  config?: string | ((place: ServerProcessPlace) => string);
  /** Name of the config file in the temp dir (default `server.conf`). */
  configName?: string;
  /** Start of the temp dir's name (default `<command>-`). */
  prefix?: string;
  /** Started when this holds, polled (default: the port accepts a TCP connection). */
  ready?: (place: ServerProcessPlace) => boolean | Promise<boolean>;
  /** Give up starting after this many ms (default 10 s). */
  startTimeout?: number;
  /** After SIGTERM, wait this many ms before SIGKILL (default 5 s). */
  killTimeout?: number;
  /** Environment of the process (default this process's). */
  env?: NodeJS.ProcessEnv;
}

/** A server process of a test on a free loopback port, with a temp dir that lives until `stop()`. */
export interface ServerProcess extends ServerProcessPlace {
  /** Process id while it runs, else undefined. */
  readonly pid: number | undefined;
  /** Everything the process wrote to stdout and stderr, across starts. */
  output(): string;
  /** Start it again (after `kill()`) on the same port, dir and config; throws when it already runs. */
  start(): Promise<void>;
  /** Stop the process (SIGTERM, SIGKILL after `killTimeout`); the dir stays, for `start()`. */
  kill(): Promise<void>;
  /** `kill()`, then `start()`. */
  restart(): Promise<void>;
  /** Stop the process and remove the temp dir. */
  stop(): Promise<void>;
}

interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  ended: string | undefined;
}

/**
 * Start a private server (`command args`, config in a fresh temp dir) on a free port of 127.0.0.1 and wait until it
 * is ready; a failed first start kills it and removes the dir, and so does this process exiting before `stop()`.
 */
export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const bin = findExecutable(options.command);
  if (bin === undefined)
    throw new Error(`${options.command} is not installed (looked on PATH and in ${EXTRA_DIRS.join(', ')})`);
  const name = basename(options.command);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), options.prefix ?? `${name}-`));
  const place: ServerProcessPlace = { port, dir, configFile: join(dir, options.configName ?? 'server.conf') };
  const { config } = options;
  const args =
    typeof options.args === 'function'
      ? options.args(place)
      : (options.args ?? (config === undefined ? [] : ['-c', place.configFile]));
  const ready = options.ready ?? (() => canConnect(port));
  let out = '';
  let current: Running | undefined;
  const tail = () => (out.length > 2000 ? `…${out.slice(-2000)}` : out) || '(no output)';

  const kill = async () => {
    const run = current;
    current = undefined;
    if (run === undefined || run.ended !== undefined) return;
    run.child.kill('SIGTERM');
    const force = setTimeout(() => run.child.kill('SIGKILL'), options.killTimeout ?? 5000);
    await run.exited;
    clearTimeout(force);
  };

  const start = async () => {
    if (current !== undefined && current.ended === undefined)
      throw new Error(`${name} already runs (pid ${current.child.pid})`);
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
    const run: Running = {
      child,
      ended: undefined,
      exited: new Promise<void>((resolve) => {
        // 'close', not 'exit': the process has exited and its output has all been read.
        child.once('close', (code, signal) => {
          run.ended = signal === null ? `exit code ${code}` : `signal ${signal}`;
          resolve();
        });
        child.once('error', (err) => {
          run.ended ??= err.message;
          if (child.pid === undefined) resolve(); // not spawned: no 'exit' follows
        });
      }),
    };
    current = run;
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(async () => run.ended !== undefined || (await ready(place)), {
        timeout: options.startTimeout ?? 10_000,
        message: () => `${name} to be ready on 127.0.0.1:${port}; its output: ${tail()}`,
      });
    } catch (err) {
      await kill();
      throw err;
    }
    if (run.ended !== undefined) {
      current = undefined;
      throw new Error(`${name} ended at start (${run.ended}): ${tail()}`);
    }
  };

  if (config !== undefined)
    writeFileSync(place.configFile, typeof config === 'function' ? config(place) : config);
  // A test or bench process that ends without stop() (a crash, process.exit) takes its server and dir along.
  const forget = untilExit(() => {
    if (current !== undefined && current.ended === undefined) current.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  try {
    await start();
  } catch (err) {
    forget();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    ...place,
    get pid() {
      return current?.ended === undefined ? current?.child.pid : undefined;
    },
    output: () => out,
    start,
    kill,
    async restart() {
      await kill();
      await start();
    },
    async stop() {
      forget();
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
