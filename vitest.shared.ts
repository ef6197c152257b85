import { defineProject } from 'vitest/config';

/** The export condition that points workspace packages at their TypeScript sources, so tests need no build. */
export const sourceCondition = '@connector/source';

/** Per-package vitest settings: resolve workspace packages to `src/` and keep broker tests in time. */
export function packageProject(name: string, overrides: { testTimeout?: number; fileParallelism?: boolean } = {}) {
  return defineProject({
    resolve: { conditions: [sourceCondition, 'import', 'module', 'node', 'default'] },
    ssr: { resolve: { conditions: [sourceCondition, 'import', 'module', 'node', 'default'] } },
    test: {
      name,
      environment: 'node',
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      testTimeout: overrides.testTimeout ?? 30_000,
      hookTimeout: 30_000,
      fileParallelism: overrides.fileParallelism ?? true,
    },
  });
}
