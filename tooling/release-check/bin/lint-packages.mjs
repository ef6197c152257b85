#!/usr/bin/env node
// pnpm --filter @connector/release-check lint:packages
// publint --strict and arethetypeswrong on every publishable package (packages/*), on the tarball `pnpm pack`
// makes, i.e. with publishConfig applied and workspace: ranges replaced, exactly what `changeset publish` uploads.
// attw runs with --profile esm-only: the packages are ESM only ("type": "module", exports with "import"/"default"
// only), so CommonJS `require` (node16-cjs) and pre-exports resolution (node10) are out of scope by design.
// Needs built packages (turbo run build --filter='./packages/*').
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');
const bin = (name) => join(here, '../node_modules/.bin', name);
const work = mkdtempSync(join(tmpdir(), 'lint-packages-'));
const failed = [];
try {
  for (const dir of readdirSync(join(root, 'packages')).sort()) {
    const cwd = join(root, 'packages', dir);
    const packed = execFileSync('pnpm', ['pack', '--pack-destination', join(work, dir)], {
      cwd,
      encoding: 'utf8',
    });
    const tarball = packed.trim().split('\n').pop();
    const checks = [
      ['publint', [bin('publint'), '--strict', cwd]],
      ['attw', [bin('attw'), tarball, '--profile', 'esm-only', '--format', 'table-flipped']],
    ];
    for (const [label, [cmd, ...args]] of checks) {
      const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
      if (r.status === 0) {
        process.stdout.write(`ok    ${label.padEnd(7)} packages/${dir}\n`);
      } else {
        failed.push(`${label} packages/${dir}`);
        process.stdout.write(`FAIL  ${label.padEnd(7)} packages/${dir}\n${r.stdout}${r.stderr}\n`);
      }
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
if (failed.length > 0) {
  process.stderr.write(`lint:packages: ${failed.length} failed: ${failed.join(', ')}\n`);
  process.exit(1);
}
