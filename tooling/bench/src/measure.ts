import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import type { CaseParams } from './registry.js';
import { quantile, type Repetition } from './stats.js';

/** Start a V8 CPU profile of this process (100 µs sampling); the returned function stops it and writes `path`. */
export async function startProfile(path: string): Promise<() => Promise<void>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(path, JSON.stringify(profile));
    session.disconnect();
  };
}

/** user+sys CPU of process `pid` so far, µs, from /proc (undefined where there is none). */
export function procCpuMicros(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
}

/**
 * Time one batch of `n` operations: wall clock, user+sys CPU of this process (and of the gateway's, when
 * `measured.gatewayPid` is given), and the per-operation latencies that `batch` writes into the array it gets (ms).
 * Profiles the batch when `measured.profile` is set. A warm-up passes no `measured`.
 */
export async function timed(
  n: number,
  batch: (latencies: Float64Array) => Promise<void>,
  measured: Pick<CaseParams, 'profile' | 'gatewayPid'> = {},
): Promise<Repetition> {
  const lat = new Float64Array(n);
  const stop = measured.profile === undefined ? undefined : await startProfile(measured.profile);
  const gw0 = procCpuMicros(measured.gatewayPid);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await batch(lat);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const gw1 = procCpuMicros(measured.gatewayPid);
  await stop?.();
  const per10k = (micros: number) => (micros / 1e6) * (10_000 / n);
  return {
    ops: n,
    seconds,
    opsPerSec: n / seconds,
    p50Ms: quantile(lat, 0.5),
    p99Ms: quantile(lat, 0.99),
    cpuPer10k: per10k(cpu.user + cpu.system),
    ...(gw0 !== undefined && gw1 !== undefined ? { gatewayCpuPer10k: per10k(gw1 - gw0) } : {}),
  };
}

/** `n` operations from `concurrency` loops that each await `op` before starting the next one. */
export function loops(
  n: number,
  concurrency: number,
  op: () => Promise<unknown>,
): (lat: Float64Array) => Promise<void> {
  return async (lat) => {
    let next = 0;
    const loop = async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        const s = performance.now();
        await op();
        lat[i] = performance.now() - s;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
  };
}

/** Operations of the warm-up before the measured repetition. */
export const warmUp = (p: CaseParams) => Math.max(200, Math.floor(p.n / 4));

/** A warm-up of `concurrency` loops, then one measured repetition of `n` operations. */
export async function closedLoop(
  p: CaseParams,
  concurrency: number,
  op: () => Promise<unknown>,
): Promise<Repetition> {
  await timed(warmUp(p), loops(warmUp(p), concurrency, op));
  return timed(p.n, loops(p.n, concurrency, op), p);
}
