import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../../..');
const packages = readdirSync(join(root, 'packages'));
const work = mkdtempSync(join(tmpdir(), 'pack-install-'));
const tarballs: Record<string, string> = {};

// turbo builds every workspace dependency of this package (all of packages/*) before this test runs.
beforeAll(async () => {
  for (const dir of packages) {
    const { stdout } = await run('pnpm', ['pack', '--pack-destination', work], {
      cwd: join(root, 'packages', dir),
    });
    const file = stdout.trim().split('\n').pop() as string;
    tarballs[dir] = file.startsWith('/') ? file : join(work, file);
  }
  writeFileSync(
    join(work, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  );
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...Object.values(tarballs)], {
    cwd: work,
    timeout: 200_000,
  });
}, 240_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('published packages, installed with npm from their tarballs', () => {
  it('have workspace: ranges replaced by real versions and ship only dist/, README and package.json', async () => {
    for (const dir of packages) {
      const { stdout } = await run('tar', ['tzf', tarballs[dir] as string]);
      const files = stdout.trim().split('\n');
      expect(
        files.every((f) => /^package\/(dist\/|bin\/|README\.md$|package\.json$|LICENSE)/.test(f)),
        dir,
      ).toBe(true);
      expect(
        files.some((f) => f.endsWith('.test.js')),
        dir,
      ).toBe(false);
      const manifest = JSON.parse(
        readFileSync(join(work, 'node_modules/@connector', dir, 'package.json'), 'utf8'),
      );
      const ranges = JSON.stringify({ ...manifest.dependencies, ...manifest.peerDependencies });
      expect(ranges, dir).not.toContain('workspace:');
      expect(JSON.stringify(manifest.exports), dir).not.toContain('@connector/source');
    }
  });

  it('import and run a timer connector against the test gateway', async () => {
    writeFileSync(
      join(work, 'smoke.mjs'),
      `
import { createConnector, createController } from '@connector/core';
import { intervalSource, cronSource } from '@connector/source-timer';
import { startGateway } from '@connector/testing/gateway';
import * as mqtt from '@connector/source-mqtt';
import * as kafka from '@connector/source-kafka';
import * as sqs from '@connector/source-sqs';
const gateway = await startGateway({ functions: [{ name: 'echo', annotations: { topic: 'tick' } }] });
const controller = createController({ gatewayUrl: gateway.url });
const connector = createConnector({ controller, source: intervalSource({ interval: 20, topic: 'tick', body: 'hello' }) });
await connector.start();
const calls = await gateway.waitForInvocations(3, { fn: 'echo' });
await connector.stop();
await gateway.close();
console.log(JSON.stringify({
  bodies: calls.map((c) => c.body.toString()),
  cron: typeof cronSource,
  exports: { mqtt: Object.keys(mqtt).length, kafka: Object.keys(kafka).length, sqs: Object.keys(sqs).length },
}));
`,
    );
    const { stdout } = await run(process.execPath, ['smoke.mjs'], { cwd: work, timeout: 30_000 });
    const out = JSON.parse(stdout.trim().split('\n').pop() as string);
    expect(out.bodies.slice(0, 3)).toEqual(['hello', 'hello', 'hello']);
    expect(out.cron).toBe('function');
    expect(out.exports.mqtt).toBeGreaterThan(0);
  });
});
