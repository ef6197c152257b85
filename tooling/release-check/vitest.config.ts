import { packageProject } from '../../vitest.shared.ts';

export default packageProject('release-check', { testTimeout: 240_000 });
