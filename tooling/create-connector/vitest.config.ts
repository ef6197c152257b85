import { packageProject } from '../../vitest.shared.ts';

export default packageProject('create-connector', { testTimeout: 240_000 });
