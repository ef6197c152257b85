import { packageProject } from '../../vitest.shared.ts';

export default packageProject('source-nats');
