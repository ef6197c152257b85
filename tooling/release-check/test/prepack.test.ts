import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../../..');
const work = mkdtempSync(join(tmpdir(), 'prepack-'));
afterAll(() => {
  rmSync(work, { recursive: true });
  expect(existsSync(work)).toBe(false);
});

const publishable = readdirSync(join(root, 'packages'))
  .map((d) => ({ dir: d, pkg: JSON.parse(readFileSync(join(root, 'packages', d, 'package.json'), 'utf8')) }))
  .filter(({ pkg }) => pkg.private !== true);

describe('packing before a build', () => {
  it.each(publishable.map((p) => [p.pkg.name, p.pkg.scripts]))('%s builds in prepack', (_name, scripts) => {
    expect(scripts.prepack).toBe(scripts.build);
  });

  it('pnpm pack of a package that was never built still ships dist/', async () => {
    // A copy of core (it has no workspace dependencies) without dist/, next to the base tsconfig it extends.
    const pkgDir = join(work, 'packages/core');
    mkdirSync(pkgDir, { recursive: true });
    cpSync(join(root, 'tsconfig.base.json'), join(work, 'tsconfig.base.json'));
    for (const f of ['package.json', 'tsconfig.json', 'README.md', 'src'])
      cpSync(join(root, 'packages/core', f), join(pkgDir, f), { recursive: true });
    symlinkSync(join(root, 'packages/core/node_modules'), join(pkgDir, 'node_modules'));
    symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'));
    expect(existsSync(join(pkgDir, 'dist'))).toBe(false);
    await run('pnpm', ['pack', '--pack-destination', work], {
      cwd: pkgDir,
      env: { ...process.env, PATH: `${join(root, 'node_modules/.bin')}${delimiter}${process.env['PATH']}` },
      timeout: 120_000,
    });
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    expect(tarball).toBeDefined();
    const { stdout } = await run('tar', ['tzf', join(work, tarball as string)]);
    expect(stdout.split('\n')).toContain('package/dist/index.js');
    expect(stdout.split('\n')).toContain('package/dist/index.d.ts');
  }, 150_000);
});

describe('package READMEs', () => {
  it.each(publishable.map((p) => [p.pkg.name, p.dir, p.pkg.engines.node]))(
    '%s says it is ESM only and which Node it needs (engines %s)',
    (_name, dir, engines) => {
      const readme = readFileSync(join(root, 'packages', dir, 'README.md'), 'utf8');
      expect(readme).toContain('ESM only');
      const min = /^>=(\d+\.\d+)/.exec(engines)?.[1];
      expect(min).toBeDefined();
      expect(readme).toContain(`Node >= ${min}`);
    },
  );
});
