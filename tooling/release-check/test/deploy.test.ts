import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startGateway } from '@connector/testing';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');
const out = join(mkdtempSync(join(tmpdir(), 'deploy-')), 'app');
// The mkdtemp folder itself too (removing only `app` left a deploy-XXXXXX folder behind on every run).
afterAll(() => {
  rmSync(dirname(out), { recursive: true });
  expect(existsSync(dirname(out))).toBe(false);
});

// What each app's Dockerfile does, minus Docker (no engine here): `pnpm deploy --prod`, then `node dist/main.js`.
describe('pnpm deploy --prod output (the Dockerfile runtime stage)', () => {
  it('starts the timer connector, invokes, and exits 0 on SIGTERM after draining', {
    timeout: 300_000,
  }, async () => {
    await promisify(execFile)(
      'pnpm',
      // --prefer-offline: the legacy deploy resolves every dependency again; cached registry metadata is enough
      // (a cold registry round trip per package once took this past two minutes under CI load).
      ['--filter', '@connector/timer-connector', 'deploy', '--prod', '--legacy', '--prefer-offline', out],
      { cwd: root, timeout: 270_000 },
    );
    expect(existsSync(join(out, 'dist/main.js'))).toBe(true);
    expect(existsSync(join(out, 'src'))).toBe(false);
    expect(existsSync(join(out, 'node_modules/vitest'))).toBe(false);
    const gateway = await startGateway({
      functions: [{ name: 'job', annotations: { topic: 'cron-function', schedule: '* * * * * *' } }],
    });
    try {
      const child = spawn(process.execPath, ['dist/main.js'], {
        cwd: out,
        env: { PATH: process.env['PATH'], gateway_url: gateway.url, http_port: '0', log_level: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let log = '';
      child.stdout.on('data', (c: Buffer) => (log += c.toString()));
      child.stderr.on('data', (c: Buffer) => (log += c.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      await gateway.waitForInvocations(1, { fn: 'job', timeout: 15_000 });
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(log).toContain('signal received: draining in-flight messages');
      expect(log).toContain('connector stopped');
    } finally {
      await gateway.close();
    }
  });

  it('exits 2 with one line naming a bad setting', async () => {
    const res = await promisify(execFile)(process.execPath, ['dist/main.js'], {
      cwd: out,
      env: { PATH: process.env['PATH'], gateway_url: 'nope' },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(res.code).toBe(2);
    expect(res.stderr.trim()).toBe(
      'timer-connector: invalid gateway_url="nope": expected a URL like http://host:port',
    );
  });
});
