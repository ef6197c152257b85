import { mergeConfig, type UserWorkspaceConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import core from '../../packages/core/vitest.config.ts';
import sourceKafka from '../../packages/source-kafka/vitest.config.ts';
import sourceMqtt from '../../packages/source-mqtt/vitest.config.ts';
import sourceSqs from '../../packages/source-sqs/vitest.config.ts';

/** The package under mutation (set by stryker.config.mjs): its own vitest config runs the tests. */
// biome-ignore lint/suspicious/noUndeclaredEnvVars: read by `pnpm mutate` only, which turbo does not run
const pkg = process.env.MUTATE_PACKAGE ?? 'core';
const configs: Record<string, UserWorkspaceConfig> = {
  core,
  'source-kafka': sourceKafka,
  'source-mqtt': sourceMqtt,
  'source-sqs': sourceSqs,
};
const base = configs[pkg];
if (base === undefined) throw new Error(`MUTATE_PACKAGE=${pkg}: no vitest config for it here`);

// The mutated package's own vitest config (resolve.conditions = '@connector/source', its timeouts) with two changes for Stryker:
// tests run from the package, and (core) fast unit files go first. Stryker stops a mutant at its first failing test
// (bail), and vitest's default order is slowest file first: a mutant the unit tests kill in milliseconds would
// otherwise wait for the gateway integration tests. Named vitest.mutate.ts so the root `projects` glob skips it.

/** Files run first, in this order; the rest (integration tests against the test gateway) follow. */
const FIRST = [
  'test/ack.test.ts',
  'test/headers.test.ts',
  'test/dead-letters.test.ts',
  'test/engine-unit.test.ts',
  'src/engine.test.ts',
  'test/invoker.test.ts',
  'test/connector-lifecycle.test.ts',
  'test/delivery-rules.test.ts',
  // sources: their unit files before the broker integration tests
  'src/acks.test.ts',
  'test/acks.test.ts',
  'src/offsets.test.ts',
  'test/commit.test.ts',
  'test/deleter.test.ts',
];

class FastFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => {
      const i = FIRST.findIndex((p) => f.moduleId.endsWith(p));
      return i < 0 ? FIRST.length : i;
    };
    return [...(await super.sort(files))].sort((a, b) => rank(a) - rank(b));
  }
}

/**
 * The test files a mutation run uses. On a 2-core machine shared with others, every core test file per surviving
 * mutant does not fit in one run: by default the unit files plus the two integration files that pin delivery and
 * lifecycle (delivery-rules, policy, connector) against the test gateway. MUTATE_ALL_TESTS=1 runs every core test file.
 */
// biome-ignore lint/suspicious/noUndeclaredEnvVars: read by `pnpm mutate` only, which turbo does not run
const only = process.env.MUTATE_TESTS?.split(',').filter(Boolean);
/**
 * MUTATE_TESTS=test/invoker.test.ts,… runs only those files (paths from the package). Fewer tests can only kill
 * fewer mutants, so the score is a lower bound of the default set's, in a fraction of the time: a surviving mutant
 * does not wait for every gateway integration test that reaches it.
 */
const include = only?.length
  ? only
  : // biome-ignore lint/suspicious/noUndeclaredEnvVars: read by `pnpm mutate` only, which turbo does not run
    process.env.MUTATE_ALL_TESTS
    ? ['src/**/*.test.ts', 'test/**/*.test.ts']
    : [...FIRST, 'test/policy.test.ts', 'test/connector.test.ts'];

const config = mergeConfig(base, {
  root: new URL(`../../packages/${pkg}/`, import.meta.url).pathname,
  test: { sequence: { sequencer: FastFirst } },
});
config.test = { ...config.test, include }; // mergeConfig would append to core's include, not replace it

export default config;
