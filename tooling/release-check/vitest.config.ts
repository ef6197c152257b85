import { packageProject } from '../../vitest.shared.ts';

// One file at a time: pack-install (npm install), deploy (pnpm deploy) and release (pnpm install) each fetch or
// link hundreds of packages; run side by side under CI load they starved one another past their timeouts.
export default packageProject('release-check', { testTimeout: 240_000, fileParallelism: false });
