import { findCase, registeredCases } from './cases.js';
import type { CaseParams } from './registry.js';

/**
 * The connector side of one case, in its own process (pinned to CPU 0 by the CLI): `node worker.js <id> <params>`.
 * Prints one JSON line `{ result, maxRssMb }` where maxRssMb is this process's peak RSS.
 */
const [id, raw] = process.argv.slice(2);
const c = id === undefined ? undefined : findCase(id);
if (!c) {
  process.stderr.write(
    `unknown case ${id}; known: ${registeredCases()
      .map((x) => x.id)
      .join(', ')}\n`,
  );
  process.exit(2);
}
c.run(JSON.parse(raw ?? '{}') as CaseParams).then(
  (result: unknown) => {
    process.stdout.write(`${JSON.stringify({ result, maxRssMb: process.resourceUsage().maxRSS / 1024 })}\n`);
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
