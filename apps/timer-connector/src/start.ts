#!/usr/bin/env node
// `pnpm start` at the repo root: a demo gateway with a cron-annotated function unless gateway_url is set.
import { startDemo } from './demo.js';
import { exitOnStartupFailure } from './main.js';

startDemo().catch(exitOnStartupFailure);
