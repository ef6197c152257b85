// @ts-check
// Mutation testing of core's delivery path: `pnpm mutate` (not part of `pnpm test`). See ./README.md.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
/** The files under mutation; MUTATE_ONLY=engine,headers limits a run to some (their results go to a subfolder). */
const files = [
  'packages/core/src/engine.ts',
  'packages/core/src/connector.ts',
  'packages/core/src/invoker.ts',
  'packages/core/src/headers.ts',
  'packages/core/src/kit/ack.ts',
  'packages/core/src/dead-letters.ts',
];
const only = process.env.MUTATE_ONLY?.split(',').filter(Boolean);
const mutate = only ? files.filter((f) => only.some((o) => f.endsWith(`/${o}.ts`))) : files;
const out = only ? `bench/results/mutation/${only.join('+')}` : 'bench/results/mutation';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  // Paths are relative to the repo root: the root script runs `stryker run tooling/mutate/stryker.config.mjs` there.
  mutate,
  plugins: [require.resolve('@stryker-mutator/vitest-runner')],
  testRunner: 'vitest',
  // core's own vitest config (resolve.conditions = '@connector/source', timeouts), run from packages/core, unit
  // test files first (see vitest.mutate.ts).
  vitest: { configFile: 'tooling/mutate/vitest.mutate.ts', dir: 'packages/core' },
  // Mutants in module-level code (constant tables: reserved header names, undici codes, defaults) would re-run
  // every test in a fresh environment each; at 2 cores that alone is hours. They are skipped (reported as Ignored).
  ignoreStatic: true,
  coverageAnalysis: 'perTest',
  concurrency: 2,
  // Integration tests against the in-process test gateway: a mutant that stalls delivery must time out, not hang.
  timeoutMS: 10_000,
  timeoutFactor: 2,
  // The sandbox needs core, testing, the shared vitest settings and the root manifests; core's node_modules are symlinked.
  ignorePatterns: [
    '/*',
    '!/packages',
    '/packages/*',
    '!/packages/core',
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
