import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { startRegistry } from './registry.js';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '../../..');
const copy = join(mkdtempSync(join(tmpdir(), 'release-')), 'repo');
afterAll(() => rmSync(dirname(copy), { recursive: true, force: true }));

// pnpm changeset -> pnpm version-packages -> pnpm release, in a copy of the tree, against a registry on loopback.
describe('release flow', () => {
  it('versions with changesets and publishes every package with real dependency ranges', async () => {
    const registry = await startRegistry();
    try {
      const { stdout } = await run('git', ['ls-files', '-co', '--exclude-standard', '-z'], {
        cwd: repo,
        maxBuffer: 64 << 20,
      });
      for (const f of stdout.split('\0').filter(Boolean))
        cpSync(join(repo, f), join(copy, f), { force: true });
      const git = (...args: string[]) => run('git', args, { cwd: copy });
      await git('init', '-q', '-b', 'main');
      await git('-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'add', '-A');
      await git('-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'commit', '-qm', 'base');
      await run('pnpm', ['install', '--prefer-offline', '--frozen-lockfile', '--reporter=silent'], {
        cwd: copy,
        timeout: 180_000,
      });

      // What `pnpm changeset` writes after its prompts.
      writeFileSync(
        join(copy, '.changeset/brave-release.md'),
        `---\n'@connector/core': minor\n'@connector/source-timer': patch\n---\n\nA release made by the test.\n`,
      );
      await run('pnpm', ['version-packages'], { cwd: copy, timeout: 120_000 });
      const version = (dir: string) =>
        JSON.parse(readFileSync(join(copy, 'packages', dir, 'package.json'), 'utf8')).version;
      expect(version('core')).toBe('0.2.0');
      expect(version('source-timer')).toBe('0.1.1');
      expect(readFileSync(join(copy, 'packages/core/CHANGELOG.md'), 'utf8')).toContain(
        'A release made by the test.',
      );

      const npmrc = join(dirname(copy), '.npmrc');
      writeFileSync(
        npmrc,
        `registry=${registry.url}/\n${registry.url.replace('http:', '')}/:_authToken=test-token\n`,
      );
      const env = {
        ...process.env,
        npm_config_registry: `${registry.url}/`,
        npm_config_userconfig: npmrc,
        CI: 'true',
      };
      await run('pnpm', ['release'], { cwd: copy, env, timeout: 240_000 });

      const published = [...registry.packages.keys()].sort();
      expect(published).toEqual([
        '@connector/core',
        '@connector/otel',
        '@connector/source-kafka',
        '@connector/source-mqtt',
        '@connector/source-nats',
        '@connector/source-rabbitmq',
        '@connector/source-sqs',
        '@connector/source-timer',
        '@connector/testing',
      ]);
      const timer = registry.packages.get('@connector/source-timer')?.get('0.1.1')?.manifest;
      expect(timer?.dependencies?.['@connector/core']).toBe('^0.2.0');
      expect(registry.packages.get('@connector/core')?.has('0.2.0')).toBe(true);
      for (const versions of registry.packages.values()) {
        for (const v of versions.values()) {
          const { dependencies, peerDependencies, optionalDependencies } = v.manifest as Record<
            string,
            unknown
          >;
          expect(JSON.stringify({ dependencies, peerDependencies, optionalDependencies })).not.toContain(
            'workspace:',
          );
        }
      }
      // A peer range that still holds does not force a major bump of @connector/testing (changesets' default would):
      // it gets only what its own changesets ask for (none: 0.1.0; a minor of its own in .changeset: 0.2.0).
      const testing = [...(registry.packages.get('@connector/testing')?.keys() ?? [])];
      expect(testing).toHaveLength(1);
      expect(testing[0]).toMatch(/^0\.[12]\.0$/);
      expect(
        registry.packages.get('@connector/testing')?.get(testing[0] as string)?.manifest['peerDependencies'],
      ).toMatchObject({
        '@connector/core': '>=0.1.0',
      });
      const { stdout: tags } = await git('tag');
      expect(tags).toContain('@connector/core@0.2.0');
    } finally {
      await registry.close();
    }
  }, 400_000);
});
