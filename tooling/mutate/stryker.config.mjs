// @ts-check
// Mutation testing of core's delivery path: `pnpm mutate` (not part of `pnpm test`). See ./README.md.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
/**
 * The targets, by the name MUTATE_ONLY takes (MUTATE_ONLY=engine,headers limits a run to some; results go to a
 * subfolder). A run mutates one package (its vitest config runs the tests): core's files by default, a source's
 * ack/commit/delete path by its name alone. `file:from-to` mutates those lines only; a list names several files.
 */
const targets = {
  engine: 'packages/core/src/engine.ts',
  connector: 'packages/core/src/connector.ts',
  invoker: 'packages/core/src/invoker.ts',
  headers: 'packages/core/src/headers.ts',
  ack: 'packages/core/src/kit/ack.ts',
  'dead-letters': 'packages/core/src/dead-letters.ts',
  // core's HTTP/1.1 client: framing, keep-alive, the pool (run with MUTATE_TESTS=test/http-pool.test.ts)
  'http-pool': 'packages/core/src/http-pool.ts',
  // source-mqtt: PUBACK after delivery, in receive order
  acks: 'packages/source-mqtt/src/acks.ts',
  // source-sqs: DeleteMessageBatch of acked messages, retries of failed entries
  deleter: 'packages/source-sqs/src/deleter.ts',
  // source-sqs: the fast path's JSON-protocol calls and SigV4 (run with MUTATE_TESTS=test/wire.test.ts,test/sigv4.test.ts)
  'sqs-wire': ['packages/source-sqs/src/wire.ts', 'packages/source-sqs/src/sigv4.ts'],
  // source-kafka: the commit rule (offsets.ts), and in source.ts reply, commit, redeliver/seek and the per-partition
  // batch loop (`reply` to `onBatch`'s end: keep the range in step with the file)
  'kafka-commit': ['packages/source-kafka/src/offsets.ts', 'packages/source-kafka/src/source.ts:205-359'],
};
/** The test files each source's run uses by default (paths from the package; MUTATE_TESTS overrides). */
const sourceTests = {
  'source-mqtt': ['src/acks.test.ts', 'test/acks.test.ts', 'test/source.test.ts'],
  'source-sqs': ['test/deleter.test.ts', 'test/settle.test.ts', 'test/source.test.ts'],
  'source-kafka': [
    'src/offsets.test.ts',
    'test/commit.test.ts',
    'test/source.test.ts',
    'test/ordering.test.ts',
  ],
};
const only = process.env.MUTATE_ONLY?.split(',').filter(Boolean);
for (const o of only ?? [])
  if (!(o in targets)) throw new Error(`MUTATE_ONLY=${o}: not one of ${Object.keys(targets).join(', ')}`);
const mutate = only
  ? only.flatMap((o) => targets[o])
  : Object.values(targets)
      .flat()
      .filter((f) => f.startsWith('packages/core/'));
const pkgs = [...new Set(mutate.map((f) => f.split('/')[1]))];
if (pkgs.length !== 1) throw new Error(`MUTATE_ONLY: one package per run, got ${pkgs.join(', ')}`);
const pkg = pkgs[0];
// Read by vitest.mutate.ts in Stryker's test runner processes (they inherit this environment).
process.env.MUTATE_PACKAGE = pkg;
if (pkg !== 'core' && !process.env.MUTATE_TESTS) process.env.MUTATE_TESTS = sourceTests[pkg].join(',');
const out = only ? `bench/results/mutation/${only.join('+')}` : 'bench/results/mutation';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  // Paths are relative to the repo root: the root script runs `stryker run tooling/mutate/stryker.config.mjs` there.
  mutate,
  plugins: [require.resolve('@stryker-mutator/vitest-runner')],
  testRunner: 'vitest',
  // the package's own vitest config (resolve.conditions = '@connector/source', timeouts), run from the package;
  // core's unit test files first (see vitest.mutate.ts).
  vitest: { configFile: 'tooling/mutate/vitest.mutate.ts', dir: `packages/${pkg}` },
  // Mutants in module-level code (constant tables: reserved header names, undici codes, defaults) would re-run
  // every test in a fresh environment each; at 2 cores that alone is hours. They are skipped (reported as Ignored).
  ignoreStatic: true,
  coverageAnalysis: 'perTest',
  concurrency: 2,
  // Integration tests against the in-process test gateway: a mutant that stalls delivery must time out, not hang.
  timeoutMS: 10_000,
  timeoutFactor: 2,
  // The sandbox needs core, testing, the mutated package, the shared vitest settings and the root manifests; the
  // node_modules folders are symlinked (a source's workspace dependencies resolve to the unmutated originals).
  ignorePatterns: [
    '/*',
    '!/packages',
    '/packages/*',
    '!/packages/core',
    `!/packages/${pkg}`,
    // vitest.mutate.ts imports every mutated package's vitest config: those files of the other packages too
    '!/packages/source-*',
    '/packages/source-*/*',
    '!/packages/source-*/vitest.config.ts',
    ...(pkg === 'core' ? [] : [`!/packages/${pkg}/*`, `/packages/${pkg}/node_modules`]),
    '!/packages/testing', // core's vitest config aliases @connector/testing to its src by path
    '!/vitest.shared.ts',
    '!/tooling',
    '/tooling/*',
    '!/tooling/mutate',
    '!/package.json',
    '!/tsconfig.base.json',
  ],
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  // Re-runs after adding tests only test what changed; delete the file for a full run.
  incremental: true,
  incrementalFile: `${out}/incremental.json`,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `${out}/mutation.html` },
  jsonReporter: { fileName: `${out}/mutation.json` },
  clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0, reportScoreTable: true },
  thresholds: { high: 90, low: 80, break: null },
};
