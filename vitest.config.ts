import { defineConfig } from 'vitest/config';

// Root entry for running every package's tests in one vitest process (IDEs, `pnpm vitest`).
// `pnpm test` goes through turbo instead, so that only packages affected by a change re-run.
export default defineConfig({
  test: { projects: ['packages/*', 'apps/*', 'tooling/*'] },
});
