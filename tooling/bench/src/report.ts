import type { SourceRun } from './registry.js';
import { type Repetition, type Spread, spread } from './stats.js';

/** One row of the throughput table: repetitions summarised, and ratios to the row's ceiling in the same run. */
export interface Row {
  id: string;
  case: string;
  /** Core variant (`--variant`), absent for the workspace's core. */
  variant?: string;
  concurrency: number;
  /** Id of the ceiling row the ratios are against; absent for a ceiling itself. */
  ceiling?: string;
  repetitions: Repetition[];
  opsPerSec: Spread;
  p50Ms: Spread;
  p99Ms: Spread;
  cpuPer10k: Spread;
  maxRssMb: number;
  /**
   * Throughput and CPU per operation relative to the ceiling: median of the per-repetition ratios (repetition i of
   * this row against repetition i of the ceiling, which ran next to it), with their min and max.
   */
  ratio: { throughput: Spread; cpu: Spread };
  /** For a `--variant` row: the same ratios against the workspace core's row of the same case. */
  vsCore?: { throughput: Spread; cpu: Spread };
}

/** Ratios of repetition i of `reps` to repetition i of `against` (they ran next to each other). */
function paired(reps: readonly Repetition[], against: readonly Repetition[] | undefined) {
  const pairs = (f: (r: Repetition, c: Repetition) => number) =>
    spread(reps.flatMap((r, i) => (against?.[i] ? [f(r, against[i] as Repetition)] : [])));
  return {
    throughput: pairs((r, c) => r.opsPerSec / c.opsPerSec),
    cpu: pairs((r, c) => r.cpuPer10k / c.cpuPer10k),
  };
}

/**
 * Build a row; `ceiling` is the ceiling's repetitions (same count and order), undefined when not measured;
 * `core` is the workspace core's repetitions of the same case, for a variant row.
 */
export function row(
  base: Omit<Row, 'opsPerSec' | 'p50Ms' | 'p99Ms' | 'cpuPer10k' | 'ratio' | 'vsCore'>,
  ceiling: Repetition[] | undefined,
  core?: Repetition[],
): Row {
  const reps = base.repetitions;
  return {
    ...base,
    opsPerSec: spread(reps.map((r) => r.opsPerSec)),
    p50Ms: spread(reps.map((r) => r.p50Ms)),
    p99Ms: spread(reps.map((r) => r.p99Ms)),
    cpuPer10k: spread(reps.map((r) => r.cpuPer10k)),
    ratio: base.ceiling === undefined ? paired(reps, reps) : paired(reps, ceiling),
    ...(base.variant !== undefined && core ? { vsCore: paired(reps, core) } : {}),
  };
}

/** Variant rows against the workspace core, in Markdown (empty without `--variant`). */
export function variantsMarkdown(rows: readonly Row[]): string[] {
  const vs = rows.filter((r) => r.vsCore);
  if (vs.length === 0) return [];
  return [
    '## Core variants against the workspace core (same case, paired per repetition)',
    '',
    '| case | variant | ops/s × core | CPU/op × core |',
    '|---|---|---|---|',
    ...vs.map(
      (r) =>
        `| ${r.case} | ${r.variant} | ${range(r.vsCore?.throughput as Spread, 2)} | ${range(r.vsCore?.cpu as Spread, 2)} |`,
    ),
    '',
  ];
}

/** A target of the issue, as measured in this run. */
export interface Target {
  what: string;
  target: string;
  measured: string;
  /** Undefined for a line reported for information only (no threshold). */
  met: boolean | undefined;
}

const fmt = (v: number, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : '–');
const range = (s: Spread, d: number) =>
  !Number.isFinite(s.median)
    ? '– (ceiling not run)'
    : s.min === s.max
      ? fmt(s.median, d)
      : `${fmt(s.median, d)} (${fmt(s.min, d)}–${fmt(s.max, d)})`;

/** The throughput table in Markdown. */
export function throughputMarkdown(rows: readonly Row[]): string[] {
  return [
    '| case | ops/s min / **median** / max | p50 ms | p99 ms | CPU s / 10k | peak RSS MB | × ceiling ops | × ceiling CPU/op |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.case}${r.variant ? ` [${r.variant}]` : ''} | ${fmt(r.opsPerSec.min)} / **${fmt(r.opsPerSec.median)}** / ${fmt(r.opsPerSec.max)} | ` +
        `${fmt(r.p50Ms.median, 2)} | ${fmt(r.p99Ms.median, 2)} | ${fmt(r.cpuPer10k.median, 3)} | ${fmt(r.maxRssMb)} | ` +
        `${r.ceiling === undefined ? 'ceiling' : range(r.ratio.throughput, 2)} | ${r.ceiling === undefined ? 'ceiling' : range(r.ratio.cpu, 2)} |`,
    ),
  ];
}

/** The sources table in Markdown. */
export function sourcesMarkdown(
  sources: Record<string, SourceRun | string>,
  labels: Map<string, string>,
): string[] {
  const entries = Object.entries(sources);
  if (entries.length === 0) return [];
  return [
    '## Sources end to end',
    '',
    '| source | messages | msg/s | CPU s / 10k (incl. publisher) | note |',
    '|---|---|---|---|---|',
    ...entries.map(([id, v]) =>
      typeof v === 'string'
        ? `| ${labels.get(id) ?? id} | – | – | – | ${v} |`
        : `| ${labels.get(id) ?? id} | ${v.messages} | ${fmt(v.messagesPerSec)} | ${fmt(v.cpuPer10k, 3)} | ${v.note} |`,
    ),
    '',
  ];
}

/** The targets table in Markdown. */
export function targetsMarkdown(targets: readonly Target[]): string[] {
  if (targets.length === 0) return [];
  return [
    '## Targets (ratios within this run)',
    '',
    '| what | target | measured | |',
    '|---|---|---|---|',
    ...targets.map(
      (t) =>
        `| ${t.what} | ${t.target} | ${t.measured} | ${t.met === undefined ? 'information' : t.met ? 'met' : '**not met**'} |`,
    ),
    '',
  ];
}

/**
 * The target "row `id`'s throughput / its ceiling's ≥ `min`" (main core only), with the CPU per operation of the
 * row and its ratio to the ceiling's in the measured text; undefined when the row or its ceiling did not run.
 */
export function opsTarget(rows: readonly Row[], id: string, min: number, what: string): Target | undefined {
  const get = (x: string) => rows.find((r) => r.id === x && r.variant === undefined);
  const r = get(id);
  if (!r?.ceiling || !get(r.ceiling)) return undefined;
  const v = r.ratio.throughput;
  return { what, target: `≥ ${min}×`, measured: `${range(v, 2)}×`, met: v.median >= min };
}

/**
 * An information-only line (no threshold) "row `id`'s throughput / its reference row's (`ceiling`)", with both
 * rows' messages/s; undefined when either did not run.
 */
export function ratioInfo(rows: readonly Row[], id: string, what: string): Target | undefined {
  const get = (x: string) => rows.find((r) => r.id === x && r.variant === undefined);
  const r = get(id);
  const ref = r?.ceiling === undefined ? undefined : get(r.ceiling);
  if (!r || !ref) return undefined;
  return {
    what,
    target: 'information',
    measured: `${range(r.ratio.throughput, 2)}× (${fmt(r.opsPerSec.median)} vs ${fmt(ref.opsPerSec.median)} msg/s)`,
    met: undefined,
  };
}

/**
 * The CPU side of an end-to-end target line: the connector's CPU a message (and its ratio to the ceiling's), the
 * gateway's, the broker's and the publisher's, then the **machine bound**: on `cpus` CPUs, a source that costs
 * nothing beyond its invocations (the ceiling's connector and gateway CPU a message) still shares them with the
 * broker and the publisher, so it can reach at most `cpus` / (ceiling connector + ceiling gateway + broker +
 * publisher) messages a second, as a ratio of the ceiling's throughput (at most 1). Per repetition pair, median;
 * not given without `cpus`. With the row's `target` ratio above that median bound, the text says it is out of reach.
 */
export function e2eCpuText(rows: readonly Row[], id: string, cpus?: number, target?: number): string {
  const get = (x: string | undefined) => rows.find((r) => r.id === x && r.variant === undefined);
  const r = get(id);
  const c = get(r?.ceiling);
  if (!r || !c) return '';
  const med = (v: number[]) => (v.length === 0 ? undefined : spread(v).median);
  const others = {
    gateway: med(
      r.repetitions.flatMap((x) => (x.gatewayCpuPer10k === undefined ? [] : [x.gatewayCpuPer10k])),
    ),
    broker: med(
      r.repetitions.flatMap((x) =>
        x.othersCpuPer10k?.broker === undefined ? [] : [x.othersCpuPer10k.broker],
      ),
    ),
    publisher: med(
      r.repetitions.flatMap((x) => (x.othersCpuPer10k === undefined ? [] : [x.othersCpuPer10k.publisher])),
    ),
  };
  let text = `; CPU s / 10k msg: connector ${fmt(r.cpuPer10k.median, 3)} (${fmt(r.ratio.cpu.median, 2)}× the ceiling's)`;
  for (const [k, v] of Object.entries(others)) if (v !== undefined) text += `, ${k} ${fmt(v, 3)}`;
  const bound: number[] = [];
  const reached: number[] = [];
  if (cpus !== undefined)
    r.repetitions.forEach((x, i) => {
      const ceil = c.repetitions[i];
      if (!ceil || ceil.gatewayCpuPer10k === undefined || x.othersCpuPer10k === undefined) return;
      const perMessage =
        ceil.cpuPer10k +
        ceil.gatewayCpuPer10k +
        (x.othersCpuPer10k.broker ?? 0) +
        x.othersCpuPer10k.publisher;
      const b = Math.min(1, (cpus * 10_000) / perMessage / ceil.opsPerSec);
      bound.push(b);
      reached.push(x.opsPerSec / ceil.opsPerSec / b);
    });
  if (bound.length > 0)
    text +=
      `; machine bound ${range(spread(bound), 2)}× (${cpus} CPUs / CPU a message of the ceiling's connector and ` +
      `gateway + broker + publisher), reached ${range(spread(reached), 2)} of it`;
  // A target above the bound says more about the machine than about the source: say so where it is read.
  if (bound.length > 0 && target !== undefined && spread(bound).median < target)
    text += `; the target (${target}×) is above this bound: out of reach on this machine whatever the source does`;
  return text;
}

/** Targets that follow from the throughput rows (main core only, not variants). */
export function throughputTargets(rows: readonly Row[]): Target[] {
  const out: Target[] = [];
  const get = (id: string) => rows.find((r) => r.id === id && r.variant === undefined);
  const ops = (id: string, min: number, what: string) => {
    const t = opsTarget(rows, id, min, what);
    if (t) out.push(t);
  };
  const cpu = (id: string, max: number, what: string) => {
    const r = get(id);
    if (!r?.ceiling || !get(r.ceiling)) return;
    const v = r.ratio.cpu;
    out.push({ what, target: `≤ ${max}×`, measured: `${range(v, 2)}×`, met: v.median <= max });
  };
  ops('invoke-x64', 0.9, 'controller.invoke x64 throughput / undici x64');
  ops('invoke-x1', 0.9, 'controller.invoke x1 throughput / undici x1');
  ops('deliver-x64', 1.15, 'deliver (engine, metrics on) throughput / undici request x64');
  ops('deliver-push-x64', 0.85, 'deliver, push source, throughput / undici x64');
  cpu('invoke-x64', 1.15, 'controller.invoke x64 CPU per invocation / undici x64');
  cpu('invoke-x1', 1.15, 'controller.invoke x1 CPU per invocation / undici x1');
  cpu('deliver-x64', 0.85, 'deliver CPU per invocation / undici request x64');
  cpu('deliver-push-x64', 1.15, 'deliver, push source, CPU per invocation / undici x64');
  const x1 = get('invoke-x1');
  const ceiling = get('undici-x1');
  if (x1 && ceiling) {
    out.push({
      what: 'controller.invoke x1 latency p50 ≤ undici request x1 p50',
      target: `≤ ${ceiling.p50Ms.median.toFixed(3)} ms`,
      measured: `${x1.p50Ms.median.toFixed(3)} ms`,
      met: x1.p50Ms.median <= ceiling.p50Ms.median,
    });
  }
  return out;
}
