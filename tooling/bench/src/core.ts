/**
 * @connector/core as the cases use it: the workspace package, or the build named by `BENCH_CORE` (a path to a
 * variant's `index.js`, see `--variant` and experiments/), so a change to core can be measured next to the original
 * in the same run before anyone edits packages/core.
 */
export const core: typeof import('@connector/core') = await import(
  process.env['BENCH_CORE'] === undefined || process.env['BENCH_CORE'] === ''
    ? '@connector/core'
    : new URL(`file://${process.env['BENCH_CORE']}`).href
);
