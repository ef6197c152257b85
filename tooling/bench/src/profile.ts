import { readFileSync } from 'node:fs';

/** The parts of a V8 `.cpuprofile` (written by `node --cpu-prof`) that the summary reads. */
interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
    children?: number[];
  }[];
  samples: number[];
  timeDeltas: number[];
}

/** Time attributed to one frame or category, in microseconds per operation. */
export interface ProfileEntry {
  name: string;
  /** Self time (µs per operation). */
  self: number;
  /** Time with callees (µs per operation); equals self for categories. */
  total: number;
}

/** Where one case spent its CPU: by category (undici, core, node internals, GC, ...) and by frame. */
export interface ProfileSummary {
  /** Operations the profiled run made (the divisor of every figure). */
  ops: number;
  /** Sampled CPU time (µs per operation), idle excluded. */
  busy: number;
  categories: ProfileEntry[];
  /** Frames by self time, highest first. */
  frames: ProfileEntry[];
  /** Frames of @connector/core by inclusive time, highest first. */
  core: ProfileEntry[];
}

/** Which part of the process a frame belongs to. */
export function category(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return 'gc';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'program (V8/native)';
    return 'native';
  }
  if (url.includes('/packages/core/') || url.includes('/core-variant')) return '@connector/core';
  if (url.includes('/tooling/bench/')) return 'bench harness';
  const source = /\/packages\/(source-[^/]+)\//.exec(url);
  if (source) return `@connector/${source[1]}`;
  const nm = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1] as string;
  if (url.startsWith('node:internal/streams') || url.startsWith('node:stream')) return 'node streams';
  if (url.startsWith('node:')) return 'node internals';
  return 'other';
}

const short = (url: string) =>
  url
    .replace(/^file:\/\//, '')
    .replace(/.*\/node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?/, '')
    .replace(/.*\/packages\/core\//, 'core/')
    .replace(/.*\/tooling\/bench\//, 'bench/');

/** Summarise a `.cpuprofile`: self and inclusive time per frame and per category, per operation. */
export function summariseProfile(path: string, ops: number): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (id: number) => {
    const f = (byId.get(id) as CpuProfile['nodes'][number]).callFrame;
    return f.url === ''
      ? f.functionName
      : `${f.functionName || '(anonymous)'} ${short(f.url)}:${f.lineNumber + 1}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const cats = new Map<string, number>();
  let busy = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    // The delta after a sample is the time it stands for (V8 records the delta *before* each sample).
    const dt = (p.timeDeltas[i + 1] ?? 0) / ops;
    const node = byId.get(id);
    if (!node) continue;
    const cat = category(node.callFrame.url, node.callFrame.functionName);
    if (cat === 'idle') continue;
    busy += dt;
    cats.set(cat, (cats.get(cat) ?? 0) + dt);
    const k = key(id);
    self.set(k, (self.get(k) ?? 0) + dt);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const ck = key(cur);
      if (seen.has(ck)) continue;
      seen.add(ck);
      total.set(ck, (total.get(ck) ?? 0) + dt);
    }
  }
  const entries = (m: Map<string, number>) =>
    [...m].map(([name]) => ({ name, self: self.get(name) ?? 0, total: total.get(name) ?? 0 }));
  return {
    ops,
    busy,
    categories: [...cats].map(([name, v]) => ({ name, self: v, total: v })).sort((a, b) => b.self - a.self),
    frames: entries(self).sort((a, b) => b.self - a.self),
    core: entries(total)
      .filter((e) => e.name.includes(' core/'))
      .sort((a, b) => b.total - a.total),
  };
}

/** Categories under 0.05 µs per operation on both sides, folded into one line. */
function merged(cats: { n: string; v: number; c: number }[]): { n: string; v: number; c: number }[] {
  const small = cats.filter((x) => x.v < 0.05 && x.c < 0.05);
  const rest = cats.filter((x) => !small.includes(x));
  if (small.length > 1)
    rest.push({
      n: `${small.length} more packages and internals`,
      v: small.reduce((a, x) => a + x.v, 0),
      c: small.reduce((a, x) => a + x.c, 0),
    });
  else rest.push(...small);
  return rest;
}

/** Markdown of one case's profile next to the ceiling's: categories side by side, then the top frames. */
export function profileMarkdown(label: string, s: ProfileSummary, ceiling?: ProfileSummary): string[] {
  const f = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(2));
  const names = [
    ...new Set([...s.categories.map((c) => c.name), ...(ceiling?.categories ?? []).map((c) => c.name)]),
  ];
  const get = (x: ProfileSummary | undefined, n: string) =>
    x?.categories.find((c) => c.name === n)?.self ?? 0;
  const lines = [
    `### ${label}`,
    '',
    `${s.ops} operations; sampled CPU ${f(s.busy)} µs per operation${ceiling ? ` (ceiling: ${f(ceiling.busy)})` : ''}.`,
    '',
    `| category | µs / op | ${ceiling ? 'ceiling µs / op | difference |' : ''}`,
    `|---|---|${ceiling ? '---|---|' : ''}`,
    ...merged(names.map((n) => ({ n, v: get(s, n), c: get(ceiling, n) })))
      .sort((a, b) => b.v - a.v)
      .map(
        ({ n, v, c }) =>
          `| ${n} | ${f(v)} | ${ceiling ? `${f(c)} | ${v - c >= 0 ? '+' : ''}${f(v - c)} |` : ''}`,
      ),
    '',
    '| top frames (self) | self µs / op | total µs / op |',
    '|---|---|---|',
    ...s.frames.slice(0, 25).map((e) => `| \`${e.name}\` | ${f(e.self)} | ${f(e.total)} |`),
  ];
  if (s.core.length > 0) {
    lines.push(
      '',
      '| @connector/core frames (inclusive) | total µs / op | self µs / op |',
      '|---|---|---|',
      ...s.core.slice(0, 15).map((e) => `| \`${e.name}\` | ${f(e.total)} | ${f(e.self)} |`),
    );
  }
  lines.push('');
  return lines;
}
