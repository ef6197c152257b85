import { runGatewayCli } from './gateway-cli.js';

/** The `connector-test-gateway` process: run until SIGINT/SIGTERM; a bad argument exits 1 with one line. */
async function main(): Promise<void> {
  const g = await runGatewayCli(process.argv.slice(2));
  if (g === null) return;
  const stop = () => {
    void g.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(`connector-test-gateway: ${(err as Error).message}`);
  process.exit(1);
});
