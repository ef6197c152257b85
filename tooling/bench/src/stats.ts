/** min / median / max of a list. */
export interface Spread {
  min: number;
  median: number;
  max: number;
}

/** Summarise repetitions. */
export function spread(values: readonly number[]): Spread {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { min: s[0] ?? Number.NaN, median, max: s[s.length - 1] ?? Number.NaN };
}

/** The q-quantile (0..1) of samples (sorted in place). */
export function quantile(samples: Float64Array, q: number): number {
  if (samples.length === 0) return Number.NaN;
  samples.sort();
  return samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] as number;
}

/** One measured repetition of a throughput case, as a worker reports it. */
export interface Repetition {
  ops: number;
  seconds: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** user+sys CPU seconds of the connector process per 10k operations. */
  cpuPer10k: number;
  /** user+sys CPU seconds of the bench gateway's process per 10k operations (where the worker could read it). */
  gatewayCpuPer10k?: number;
  /** End-to-end source cases: user+sys CPU seconds per 10k messages of the broker and of the publisher process. */
  othersCpuPer10k?: { broker?: number; publisher: number };
}
