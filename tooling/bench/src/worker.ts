import { findCase, registeredCases } from './cases.js';
import { whenParentGone } from './parent.js';
import type { CaseParams } from './registry.js';

/**
 * The connector side of one case, in its own process (pinned to CPU 0 by the CLI): `node worker.js <id> <params>`.
 * Prints one JSON line `{ result, maxRssMb }` where maxRssMb is this process's peak RSS.
 * `BENCH_EXIT_WITH_PARENT=1`: exits when its stdin ends (the CLI gives it a pipe that closes with the CLI).
 */
const [id, raw] = process.argv.slice(2);
// Started by `pnpm bench`: exit when it ends, however it ends (private brokers go with this process: testing's
// startServerProcess kills them at exit; a publisher exits when its IPC channel goes), instead of running the case
// on against a gateway that is gone.
whenParentGone(() => process.exit(3));
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
