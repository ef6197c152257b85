import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startGateway } from '@connector/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '../../..');
const copy = join(mkdtempSync(join(tmpdir(), 'scaffold-')), 'repo');
const cli = (...args: string[]) =>
  run(process.execPath, [join(copy, 'tooling/create-connector/bin/create-connector.mjs'), ...args], {
    cwd: copy,
  }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );

// Scaffold into a copy of the working tree (tracked and untracked, not ignored files), never into the repo itself.
beforeAll(async () => {
  const { stdout } = await run('git', ['ls-files', '-co', '--exclude-standard', '-z'], {
    cwd: repo,
    maxBuffer: 64 << 20,
  });
  for (const f of stdout.split('\0').filter(Boolean)) {
    if (
      !f.startsWith('apps/') ||
      f.startsWith('apps/template/') ||
      f.startsWith('apps/timer-connector/') ||
      f.startsWith('apps/mqtt-connector/')
    ) {
      cpSync(join(repo, f), join(copy, f), { recursive: true, force: true });
    }
  }
  for (const [name, source] of [
    ['custom-connector', 'custom'],
    ['cron-connector', 'timer'],
    ['sensors-connector', 'mqtt'],
  ]) {
    const r = await cli(name as string, '--source', source as string, '--no-install');
    expect(r.code, r.stderr).toBe(0);
  }
  // The new apps change the lockfile; pnpm would refuse that under CI=true (frozen by default there).
  await run('pnpm', ['install', '--prefer-offline', '--no-frozen-lockfile', '--reporter=silent'], {
    cwd: copy,
    timeout: 180_000,
  });
}, 240_000);

afterAll(() => rmSync(dirname(copy), { recursive: true, force: true }));

describe('pnpm create-connector', () => {
  it('refuses an existing directory, an invalid name and an unknown source with one line', async () => {
    const existing = await cli('template');
    expect([existing.code, existing.stderr.trim()]).toEqual([
      1,
      'create-connector: apps/template already exists: choose another name or remove it',
    ]);
    const invalid = await cli('My_Connector');
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('"My_Connector" is not a valid npm package name');
    const source = await cli('ok-name', '--source', 'nats');
    expect(source.stderr.trim()).toBe(
      'create-connector: --source nats: expected one of custom, timer, mqtt, kafka, sqs',
    );
  });

  it('renames the package and identifiers and wires the chosen source', () => {
    const pkg = JSON.parse(readFileSync(join(copy, 'apps/cron-connector/package.json'), 'utf8'));
    expect(pkg.name).toBe('@connector/cron-connector');
    expect(pkg.bin).toEqual({ 'cron-connector': './dist/main.js' });
    expect(pkg.dependencies['@connector/source-timer']).toBe('workspace:*');
    const app = readFileSync(join(copy, 'apps/cron-connector/src/app.ts'), 'utf8');
    expect(app).toContain('timerSourceFromEnv(env)');
    expect(app).not.toContain('exampleSource');
    expect(readFileSync(join(copy, 'apps/cron-connector/src/main.ts'), 'utf8')).toContain(
      "'cron-connector: '".slice(1, -1),
    );
    const mqtt = readFileSync(join(copy, 'apps/sensors-connector/src/app.ts'), 'utf8');
    expect(mqtt).toContain('mqttSource(mqttOptionsFromEnv(env))');
    expect(mqtt).toContain("topicMatcher: 'mqtt'");
    const custom = JSON.parse(readFileSync(join(copy, 'apps/custom-connector/package.json'), 'utf8'));
    expect(Object.keys(custom.dependencies)).toEqual(['@connector/core']);
  });

  it.each(['custom-connector', 'cron-connector', 'sensors-connector'])(
    '%s builds and passes its own test',
    async (name) => {
      await run('pnpm', ['--filter', `@connector/${name}...`, 'run', 'build'], {
        cwd: copy,
        timeout: 180_000,
      });
      const { stdout } = await run('pnpm', ['--filter', `@connector/${name}`, 'test'], {
        cwd: copy,
        timeout: 120_000,
      });
      expect(stdout).toContain('passed');
    },
  );

  it('the custom connector starts at once against a gateway and stops on SIGTERM', async () => {
    const gateway = await startGateway({ functions: [{ name: 'fn', annotations: { topic: 'example' } }] });
    try {
      const child = spawn(process.execPath, ['dist/main.js'], {
        cwd: join(copy, 'apps/custom-connector'),
        env: { PATH: process.env['PATH'], gateway_url: gateway.url, http_port: '0', interval: '50ms' },
        stdio: 'ignore',
      });
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      await gateway.waitForInvocations(1, { fn: 'fn', timeout: 15_000 });
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      await gateway.close();
    }
  });
});
