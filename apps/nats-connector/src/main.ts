#!/usr/bin/env node
import { startNatsConnector } from './app.js';

startNatsConnector().catch((err: unknown) => {
  const e = err as { code?: string; message?: string };
  // Invalid configuration: one line naming the setting, exit 2; anything else: exit 1.
  process.stderr.write(`nats-connector: ${e.message ?? String(err)}\n`);
  process.exit(e.code === 'ERR_CONFIG' ? 2 : 1);
});
