import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const pkg = join(import.meta.dirname, '..');

/** Run `script` in a fresh node (TypeScript sources via the test hooks) where `unresolvable` packages cannot be found. */
async function node(script: string, unresolvable: string[] = []): Promise<string> {
  const { stdout } = await run(
    process.execPath,
    ['--conditions=@connector/source', '--import', join(pkg, 'test/fixtures/register.mjs'), script],
    { cwd: pkg, env: { ...process.env, UNRESOLVABLE: unresolvable.join(',') }, timeout: 60_000 },
  );
  return stdout;
}

describe('package entries', () => {
  it('imports the main entry where vitest cannot be resolved; only the conformance entry needs it', {
    timeout: 90_000,
  }, async () => {
    const seen = JSON.parse(await node(join(pkg, 'test/fixtures/import-main.mjs'), ['vitest', '@vitest']));
    expect(seen.exports).toEqual(
      expect.arrayContaining([
        'startGateway',
        'createTestContext',
        'waitFor',
        'cleanups',
        'outcomes',
        'conformanceSuite',
      ]),
    );
    expect(seen.echo).toBe('hi');
    expect(seen.acked).toEqual(['x']);
    expect(seen.waited).toBe('yes');
    expect(seen.exports).not.toContain('testSource'); // it needs vitest: only in the conformance entry
    expect(seen.vitest).toBe("Cannot find package 'vitest'"); // the hooks really hide it
    expect(seen.conformance).toBe("Cannot find package 'vitest'");
  });

  it('runs the README example as written', { timeout: 90_000 }, async () => {
    const readme = readFileSync(join(pkg, 'README.md'), 'utf8');
    const example = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toContain("from '@connector/testing'");
    // Inside the package, so '@connector/testing' resolves to this package (self-reference).
    const file = join(pkg, `.readme-example-${process.pid}.ts`);
    writeFileSync(file, example ?? '');
    try {
      const out = await node(file, ['vitest', '@vitest']);
      expect(out).toContain('echo.openfaas-fn');
    } finally {
      rmSync(file, { force: true });
    }
  });
});
