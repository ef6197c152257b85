import { defineProject } from 'vitest/config';

/** The export condition that points workspace packages at their TypeScript sources, so tests need no build. */
export const sourceCondition = '@connector/source';

// Neither 'import' nor 'module': vitest forwards these to workers as `node --conditions`. 'import' makes CJS
// require() pick packages' ESM entry points (mqtt.js's require('ws') breaks); 'module' picks bundler-only builds
// with extensionless imports (@aws-sdk's dist-es). Vite adds 'import'/'require' itself.
const conditions = [sourceCondition, 'node', 'development|production'];

const unitOnly = process.env['TEST_SCOPE'] === 'unit';

/** Per-package vitest settings: resolve workspace packages to `src/` and keep broker tests in time. */
export function packageProject(
  name: string,
  overrides: { testTimeout?: number; fileParallelism?: boolean } = {},
) {
  return defineProject({
    resolve: { conditions },
    ssr: { resolve: { conditions } },
    test: {
      name,
      environment: 'node',
      // TEST_SCOPE=unit (.ci/run on Node 22): only the unit tests beside the code, not test/ (brokers, processes).
      include: unitOnly ? ['src/**/*.test.ts'] : ['src/**/*.test.ts', 'test/**/*.test.ts'],
      passWithNoTests: unitOnly,
      testTimeout: overrides.testTimeout ?? 30_000,
      hookTimeout: 30_000,
      fileParallelism: overrides.fileParallelism ?? true,
      // Tests only: the AWS SDK's documented switch for its "versions after January 2027 require Node >= 22"
      // warning, printed in the middle of test output on Node 20 (.ci/run also runs the suite on Node 22 and 24).
      env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    },
  });
}
