import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
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
  // First from npm's cache alone (--offline: no registry request at all), then, when something is missing, from the
  // registry: --prefer-offline does not revalidate what is cached, --fetch-timeout gives up on a stalled request
  // after 20 s instead of npm's 5 minutes. npm picks dependency versions by the running Node's `engines`, so a Node
  // 22/24 pass can need a tarball the Node 20 pass never fetched (pino-pretty's strip-json-comments 5.1.0 needs Node
  // 22): in CI that registry install stalled past 7 minutes twice, while it takes 7 s alone. So each registry attempt
  // is a fresh npm process with its own deadline, three at most, and each failure is said on stderr.
  //
  // `.ci/run` names the Node of its first pass in CI_NPM_NODE: npm runs under it on every pass (it resolves the same
  // versions, all in the cache that pass filled), while the packages are still imported under the Node being tested.
  // Without it a Node 24 pass needed the registry, and CI failed when the registry did not answer (stalls, a proxy
  // certificate error on one tarball).
  const npmNode = process.env['CI_NPM_NODE'];
  const env =
    npmNode === undefined
      ? process.env
      : { ...process.env, PATH: `${dirname(npmNode)}${delimiter}${process.env['PATH']}` };
  const install = (network: string[], timeout: number) =>
    run(
      'npm',
      ['install', ...network, '--no-audit', '--no-fund', '--loglevel=error', ...Object.values(tarballs)],
      { cwd: work, timeout, env },
    );
  const started = Date.now();
  const say = (what: string) =>
    process.stderr.write(`pack-install: ${what} (${Math.round((Date.now() - started) / 1000)} s in)\n`);
  /** How an npm run failed, in one line: killed at its deadline or not, and the first lines npm printed. */
  const failure = (err: unknown) => {
    const e = err as { killed?: boolean; stderr?: unknown };
    const printed = String(e.stderr ?? err)
      .trim()
      .split('\n')
      .slice(0, 3)
      .join(' | ');
    return `${e.killed ? 'killed at its deadline' : 'failed'}: ${printed}`;
  };
  let done = false;
  try {
    await install(['--offline'], 60_000);
    done = true;
  } catch (err) {
    say(`install from the cache alone ${failure(err)}`);
  }
  for (let attempt = 1; !done; attempt++) {
    try {
      await install(['--prefer-offline', '--fetch-timeout=20000', '--fetch-retries=2'], 150_000);
      done = true;
    } catch (err) {
      say(`install from the registry, attempt ${attempt} of 3, ${failure(err)}`);
      if (attempt === 3) throw err;
    }
  }
  say('npm install done');
}, 570_000);

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

  // A consumer written in TypeScript: type-checked against the installed declarations (nodenext resolution, what
  // an ESM project on Node uses), then compiled and run.
  it('type-check and run a consumer: a cron and an interval connector against the test gateway', async () => {
    writeFileSync(
      join(work, 'smoke.ts'),
      `import { type Connector, createConnector, createController, type InvokeResult } from '@connector/core';
import * as kafka from '@connector/source-kafka';
import { mqttOptionsFromEnv, mqttSource } from '@connector/source-mqtt';
import { sqsOptionsFromEnv, sqsSource } from '@connector/source-sqs';
import { cronSource, intervalSource } from '@connector/source-timer';
import { startGateway } from '@connector/testing/gateway';

const gateway = await startGateway({
  functions: [
    { name: 'echo', annotations: { topic: 'tick' } },
    { name: 'job', annotations: { topic: 'cron-function', schedule: '* * * * * *' } },
  ],
});
const results: InvokeResult[] = [];
const run = async (connector: Connector, fn: string, count: number) => {
  await connector.start();
  await gateway.waitForInvocations(count, { fn, timeout: 10_000 });
  await connector.stop();
};
const interval = createController({ gatewayUrl: gateway.url });
interval.subscribe({ response: (r) => results.push(r) });
await run(createConnector({ controller: interval, source: intervalSource({ interval: 20, topic: 'tick', body: 'hello' }) }), 'echo', 3);
await run(createConnector({ controller: createController({ gatewayUrl: gateway.url }), source: cronSource({ topic: 'cron-function' }) }), 'job', 1);
const echo = gateway.invocations('echo');
const job = gateway.invocations('job');
await gateway.close();
console.log(JSON.stringify({
  echo: echo.map((c) => c.body.toString()).slice(0, 3),
  job: job.map((c) => c.headers['x-topic']).slice(0, 1),
  statuses: [...new Set(results.map((r) => r.status))],
  sources: [typeof mqttSource, typeof mqttOptionsFromEnv, typeof sqsSource, typeof sqsOptionsFromEnv, typeof kafka.kafkaSource, typeof kafka.kafkaOptionsFromEnv],
}));
`,
    );
    writeFileSync(
      join(work, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2023',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          skipLibCheck: true,
          typeRoots: [join(root, 'node_modules/@types')],
          types: ['node'],
          outDir: 'out',
        },
        files: ['smoke.ts'],
      }),
    );
    await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', '.'], {
      cwd: work,
    }).catch((err: { stdout: string }) => {
      throw new Error(`tsc: ${err.stdout}`);
    });
    const { stdout } = await run(process.execPath, ['out/smoke.js'], { cwd: work, timeout: 30_000 });
    const out = JSON.parse(stdout.trim().split('\n').pop() as string);
    expect(out).toEqual({
      echo: ['hello', 'hello', 'hello'],
      job: ['cron-function'],
      statuses: [200],
      sources: Array(6).fill('function'),
    });
  });
});
