#!/usr/bin/env node
import { startDemo } from './demo.js';

startDemo().catch((err: unknown) => {
  const e = err as { code?: string; message?: string };
  process.stderr.write(`timer-connector: ${e.message ?? String(err)}\n`);
  process.exit(e.code === 'ERR_CONFIG' ? 2 : 1);
});
