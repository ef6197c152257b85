import type { Target } from './report.js';
import type { Repetition } from './stats.js';

/** What the CLI hands a case's worker process (argv[3], JSON). */
export interface CaseParams {
  /** Base URL of the bench gateway (the echo or the hanging one, as the case asked). */
  url: string;
  /** Operations per measured repetition. */
  n: number;
  /** Seconds, for cases that run for a time (the stalled gateway). */
  seconds: number;
  /** `--quick`: tiny sizes, for the smoke test. */
  quick: boolean;
  /** The gateway's process id, for its CPU per operation (`/proc`). */
  gatewayPid?: number;
  /** Write a V8 CPU profile of the measured repetition (only) to this path. */
  profile?: string;
}

/**
 * A throughput case: one worker process runs a warm-up and ONE measured repetition; the CLI interleaves the
 * repetitions of all throughput cases (A, B, C, A, B, C, ...) so drifting background load hits every case alike.
 */
export interface ThroughputCase {
  readonly kind: 'throughput';
  /** Worker name and `--only` prefix, e.g. `undici`. */
  readonly id: string;
  /** Row name in the report, e.g. `ceiling: undici x64`. */
  readonly label: string;
  /** Concurrent callers (1 = sequential). */
  readonly concurrency: number;
  /** Id of the case this row's ratios are computed against (none for a ceiling). */
  readonly ceiling?: string;
  /** True when the case runs @connector/core (it is repeated for every `--variant` of core). */
  readonly usesCore?: boolean;
  /** Operations per repetition relative to `--messages` (sequential cases are slower: 0.25). */
  readonly scale?: number;
  /** Target: this row's throughput / its ceiling's, median of the paired repetitions, at least this. */
  readonly minRatio?: number;
  /** Without `minRatio`: report this row's throughput / its ceiling's in the Targets table for information only. */
  readonly informational?: boolean;
  /** Why the case cannot run here (e.g. `mosquitto not installed`): the CLI skips it and says so. */
  unavailable?(): string | undefined;
  /** Warm-up, then one measured repetition. */
  run(p: CaseParams): Promise<Repetition>;
}

/** Result of one source end-to-end case. */
export interface SourceRun {
  messages: number;
  seconds: number;
  messagesPerSec: number;
  /** user+sys CPU of the worker process (connector + the case's publisher / in-process broker) per 10k messages. */
  cpuPer10k: number;
  note: string;
}

/** A source end to end: broker -> source -> engine -> gateway, one run, one row of the sources table. */
export interface SourceCase {
  readonly kind: 'source';
  readonly id: string;
  readonly label: string;
  /** Messages per run relative to `--messages` (default 1; capped by `maxMessages`). */
  readonly maxMessages?: number;
  /** Why the case cannot run here (e.g. `mosquitto not installed`), checked by the CLI before spawning it. */
  unavailable?(): string | undefined;
  run(p: CaseParams): Promise<SourceRun>;
}

/** Any other measurement with its own result shape and its own Markdown section. */
export interface ReportCase<R = unknown> {
  readonly kind: 'report';
  readonly id: string;
  readonly label: string;
  /** Which gateway the case needs: the echo server, one that never answers, or none. */
  readonly gateway: 'echo' | 'hang' | 'none';
  /** Extra `node` flags for the worker (e.g. `--expose-gc`). */
  readonly nodeArgs?: readonly string[];
  run(p: CaseParams): Promise<R>;
  /** Markdown lines for the report. */
  markdown(result: R): string[];
  /** The targets this result decides, if any. */
  targets?(result: R): Target[];
}

/** A benchmark case of any kind. */
export type BenchCase = ThroughputCase | SourceCase | ReportCase;

const cases: BenchCase[] = [];

/**
 * Add a case. This is the extension point: a module under `src/` calls `registerCase` at import time and is listed
 * in `src/cases.ts`; the CLI then schedules it, the worker runs it and the report shows it.
 */
export function registerCase<R>(c: ThroughputCase | SourceCase | ReportCase<R>): void {
  if (cases.some((x) => x.id === c.id)) throw new Error(`bench case ${c.id} registered twice`);
  cases.push(c as BenchCase);
}

/** Every registered case, in registration order. */
export function registeredCases(): readonly BenchCase[] {
  return cases;
}

/** The case with this id. */
export function findCase(id: string): BenchCase | undefined {
  return cases.find((c) => c.id === id);
}
