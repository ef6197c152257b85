import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  canConnect,
  cleanups,
  findExecutable,
  freePort,
  type ServerProcess,
  type ServerProcessOptions,
  startServerProcess,
  waitFor,
} from '../src/index.js';

const fixture = join(import.meta.dirname, 'fixtures/tcp-server.mjs');
const MOSQUITTO = findExecutable(process.env['MOSQUITTO_BIN'] || 'mosquitto');

// Every temp dir these tests make goes into a TMPDIR of their own, so "nothing left behind" is checked exactly.
let tmp: string;
let savedTmp: string | undefined;
beforeAll(() => {
  savedTmp = process.env['TMPDIR'];
  tmp = mkdtempSync(join(process.env['TMPDIR'] ?? '/tmp', 'server-process-test-'));
  process.env['TMPDIR'] = tmp;
});
afterAll(() => {
  if (savedTmp === undefined) delete process.env['TMPDIR'];
  else process.env['TMPDIR'] = savedTmp;
  rmSync(tmp, { recursive: true, force: true });
});
const cleanup = cleanups();
afterEach(() => cleanup.run());

/** The node fixture server as a server process. */
function nodeServer(termination = 'term', more: Partial<ServerProcessOptions> = {}): Promise<ServerProcess> {
  return startServerProcess({
    command: process.execPath,
    args: ({ configFile }) => [fixture, '-c', configFile],
    config: ({ port }) => JSON.stringify({ port, termination }),
    configName: 'server.json',
    prefix: 'fixture-',
    ...more,
  });
}

describe('startServerProcess', () => {
  it('starts on a free port, kills, starts again on the same port and dir, and stop() leaves nothing', async () => {
    const server = cleanup.use(await nodeServer(), (s) => s.stop());
    expect(readdirSync(tmp)).toEqual([server.dir.slice(tmp.length + 1)]);
    expect(server.dir.slice(tmp.length + 1)).toMatch(/^fixture-/);
    expect(JSON.parse(readFileSync(server.configFile, 'utf8'))).toEqual({
      port: server.port,
      termination: 'term',
    });
    expect(await canConnect(server.port)).toBe(true);
    const firstPid = server.pid;
    expect(firstPid).toBeGreaterThan(0);
    // The port accepting does not mean the child's stdout has reached us yet: wait for the line.
    await waitFor(() => server.output().includes(`listening on ${server.port}`));

    await server.kill();
    expect(server.pid).toBeUndefined();
    expect(await canConnect(server.port)).toBe(false);
    expect(existsSync(server.configFile)).toBe(true); // the dir stays for start()
    await server.kill(); // idempotent

    await server.start();
    expect(await canConnect(server.port)).toBe(true);
    expect(server.pid).not.toBe(firstPid);
    await expect(server.start()).rejects.toThrow(/already runs/);
    await server.restart();
    expect(readFileSync(join(server.dir, 'starts'), 'utf8')).toBe('xxx');

    await server.stop();
    expect(await canConnect(server.port)).toBe(false);
    expect(readdirSync(tmp)).toEqual([]);
    await server.stop(); // idempotent
  });

  it('sends SIGKILL when SIGTERM is not obeyed within killTimeout', async () => {
    const server = cleanup.use(await nodeServer('ignore', { killTimeout: 300 }), (s) => s.stop());
    const t0 = Date.now();
    await server.kill();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(server.output()).toContain('ignoring SIGTERM');
    expect(await canConnect(server.port)).toBe(false);
    await server.stop();
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('a process that exits without stop() takes its servers and their dirs along', async () => {
    // Another node process starts two servers (one ignores SIGTERM) and exits at once, as a crashed test or a bench
    // worker told to end does.
    const testing = join(import.meta.dirname, '../dist/index.js');
    const script = `
      const { startServerProcess } = await import(${JSON.stringify(testing)});
      const start = (termination) => startServerProcess({
        command: process.execPath,
        args: ({ configFile }) => [${JSON.stringify(fixture)}, '-c', configFile],
        config: ({ port }) => JSON.stringify({ port, termination }),
        configName: 'server.json',
      });
      const servers = [await start('term'), await start('ignore')];
      process.stdout.write(JSON.stringify(servers.map((s) => ({ pid: s.pid, port: s.port, dir: s.dir }))));
      process.exit(0);`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, TMPDIR: tmp },
    });
    const servers = JSON.parse(out) as { pid: number; port: number; dir: string }[];
    expect(servers).toHaveLength(2);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    cleanup.add(() => {
      for (const s of servers) if (alive(s.pid)) process.kill(s.pid, 'SIGKILL'); // only if the rule broke
    });
    await waitFor(() => servers.every((s) => !alive(s.pid)), { message: 'both servers gone' });
    for (const s of servers) {
      expect(await canConnect(s.port)).toBe(false);
      expect(existsSync(s.dir)).toBe(false);
    }
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('fails with its output when the process ends at start, and leaves no dir', async () => {
    await expect(nodeServer('exit')).rejects.toThrow(
      /ended at start \(exit code 3\): bad config: refusing to start/,
    );
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('gives up after startTimeout when it never becomes ready, kills it and leaves no dir', async () => {
    const never = await freePort();
    // Long enough for node to start and print its line on a loaded machine (CI saw more than 500 ms).
    const error = await nodeServer('term', { ready: () => canConnect(never), startTimeout: 3000 }).catch(
      (e) => e,
    );
    expect(String(error)).toMatch(/to be ready on 127\.0\.0\.1:\d+; its output: listening on/);
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('names a program that is not installed', async () => {
    await expect(startServerProcess({ command: 'no-such-server-xyz' })).rejects.toThrow(
      /^no-such-server-xyz is not installed \(looked on PATH and in .*\/usr\/sbin/,
    );
    expect(findExecutable('/nonexistent/bin/x')).toBeUndefined();
    expect(findExecutable(process.execPath)).toBe(process.execPath);
    expect(readdirSync(tmp)).toEqual([]);
  });

  if (MOSQUITTO === undefined && process.env['REQUIRE_MOSQUITTO'] !== '1') {
    it('mosquitto is not installed: the mosquitto case does not run (REQUIRE_MOSQUITTO=1 makes this an error)', () => {
      expect(MOSQUITTO).toBeUndefined();
    });
  } else {
    it('runs a real mosquitto from a config file: start, kill, start again, stop', async () => {
      if (MOSQUITTO === undefined) throw new Error('REQUIRE_MOSQUITTO=1 but mosquitto is not installed');
      const server = cleanup.use(
        await startServerProcess({
          command: MOSQUITTO,
          configName: 'mosquitto.conf',
          config: ({ port, dir }) =>
            [
              ...(process.getuid?.() === 0 ? ['user root'] : []),
              'persistence true',
              `persistence_location ${dir}/`,
              'allow_anonymous true',
              `listener ${port} 127.0.0.1`,
              '',
            ].join('\n'),
        }),
        (s) => s.stop(),
      );
      expect(server.dir.slice(tmp.length + 1)).toMatch(/^mosquitto-/);
      expect(await canConnect(server.port)).toBe(true);
      await server.kill();
      expect(await canConnect(server.port)).toBe(false);
      expect(readdirSync(server.dir)).toContain('mosquitto.conf'); // the dir stays for start()
      await server.start();
      expect(await canConnect(server.port)).toBe(true);
      await server.stop();
      expect(readdirSync(tmp)).toEqual([]);
    });
  }
});
