import { fileURLToPath } from 'node:url';
import { mergeConfig } from 'vitest/config';
import { packageProject } from '../../vitest.shared.ts';

// Core's tests use @connector/testing's gateway by path, not as a devDependency: testing takes core as a peer,
// and a dependency back would make the cycle pnpm warns about on every install.
export default mergeConfig(packageProject('core'), {
  resolve: {
    alias: { '@connector/testing': fileURLToPath(new URL('../testing/src/index.ts', import.meta.url)) },
  },
});
