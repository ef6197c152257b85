import { type ChildProcess, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { registeredCases } from './cases.js';
import { spawnTied } from './parent.js';
import { type ProfileSummary, profileMarkdown, summariseProfile } from './profile.js';
import type { CaseParams, ReportCase, SourceCase, SourceRun, ThroughputCase } from './registry.js';
import {
  e2eCpuText,
  opsTarget,
  type Row,
  ratioInfo,
  row,
  sourcesMarkdown,
  type Target,
  targetsMarkdown,
  throughputMarkdown,
  throughputTargets,
  variantsMarkdown,
} from './report.js';
import { has } from './sources.js';
import type { Repetition } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');

const usage = `pnpm bench [options]
  --quick               tiny sizes, 1 repetition (the smoke test)
  --only <prefix>       run only cases whose id starts with <prefix> (repeatable): undici, dispatch, invoke,
                        deliver, wrk, match, topics, adaptive, stalled, source-mqtt, source-kafka, source-sqs,
                        source-rabbitmq, source-nats, e2e (e2e-mqtt-one, e2e-mqtt-16, e2e-mqtt-none, e2e-kafka-3,
                        e2e-sqs, e2e-nats, e2e-rabbitmq: each source end to end next to controller.invoke at its
                        concurrency; e2e-batch: batch size 100 against 1 end to end)
  --messages <n>        operations per repetition of the x64 cases (default 30000; x1 cases: a quarter)
  --repetitions <n>     measured repetitions per throughput case (default 5, interleaved across cases)
  --duration <s>        seconds of the stalled-gateway case and of wrk (default 5)
  --functions <json>    the bench gateway's functions (default [{"name":"echo","annotations":{"topic":"bench"}}])
  --variant <name=path> also run the core cases against another build of core (its dist/index.js; repeatable)
  --profile             instead of measuring, CPU-profile one repetition of each selected throughput case
  --out <dir>           where latest.json / latest.md go (default bench/results at the repo root)`;

let flags: {
  quick: boolean;
  only?: string[];
  messages?: string;
  repetitions?: string;
  duration?: string;
  seconds?: string;
  functions?: string;
  variant?: string[];
  profile: boolean;
  out: string;
  help: boolean;
};
try {
  flags = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      messages: { type: 'string' },
      repetitions: { type: 'string' },
      duration: { type: 'string' },
      seconds: { type: 'string' },
      functions: { type: 'string' },
      variant: { type: 'string', multiple: true },
      profile: { type: 'boolean', default: false },
      out: { type: 'string', default: join(root, 'bench/results') },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values as typeof flags;
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n\n${usage}\n`);
  process.exit(2);
}
if (flags.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}

function int(name: string, raw: string | undefined, fallback: number, min = 1): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) {
    process.stderr.write(`invalid --${name}=${raw}: expected an integer >= ${min}\n`);
    process.exit(2);
  }
  return v;
}
const n = int('messages', flags.messages, flags.quick ? 200 : 30_000);
const reps = int('repetitions', flags.repetitions, flags.quick ? 1 : 5);
const seconds = int('duration', flags.duration ?? flags.seconds, flags.quick ? 1 : 5);
const variants = (flags.variant ?? []).map((v) => {
  const eq = v.indexOf('=');
  let path = eq > 0 ? resolve(v.slice(eq + 1)) : '';
  if (path !== '' && !path.endsWith('.js'))
    path = join(path, existsSync(join(path, 'dist')) ? 'dist' : '', 'index.js');
  if (eq <= 0 || !existsSync(path)) {
    process.stderr.write(`invalid --variant=${v}: expected <name>=<path to a built core (dist/index.js)>\n`);
    process.exit(2);
  }
  return { name: v.slice(0, eq), path };
});
const wanted = (id: string) => !flags.only || flags.only.some((o) => id.startsWith(o));

const pinned = has('taskset') && availableParallelism() >= 2;
const pin = (cpu: number, cmd: string, args: string[]): [string, string[]] =>
  pinned ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args];

/** Start the bench gateway on CPU 1; resolves with its URL. */
async function startServer(mode: 'echo' | 'hang'): Promise<{ url: string; child: ChildProcess }> {
  const [cmd, args] = pin(1, process.execPath, [join(here, 'server.js')]);
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_MODE: mode };
  if (flags.functions !== undefined) env['BENCH_FUNCTIONS'] = flags.functions;
  const child = spawnTied(cmd, args, env); // the gateway exits with this process, even if it is killed
  const port = await new Promise<number>((res, rej) => {
    let buf = '';
    child.stdout?.on('data', (c: Buffer) => {
      buf += c.toString();
      const m = /PORT (\d+)/.exec(buf);
      if (m) res(Number(m[1]));
    });
    child.once('exit', (code) => rej(new Error(`bench gateway exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

/** Run one case in its own connector-side process on CPU 0. */
async function worker(
  id: string,
  params: CaseParams,
  opts: { nodeArgs?: readonly string[]; core?: string } = {},
): Promise<{ result: unknown; maxRssMb: number }> {
  const [cmd, args] = pin(0, process.execPath, [
    ...(opts.nodeArgs ?? []),
    join(here, 'worker.js'),
    id,
    JSON.stringify(params),
  ]);
  const child = spawnTied(cmd, args, { ...process.env, BENCH_CORE: opts.core ?? '' }); // ends with this process
  let out = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`bench case ${id} failed (exit ${code})`);
  return JSON.parse(out.trim().split('\n').pop() ?? '{}');
}

/** wrk against the gateway (its own ceiling, no Node client in the way), pinned to CPU 0 like the workers. */
function wrk(url: string, connections: number, secs: number): number {
  const script = join(here, 'wrk-post.lua');
  writeFileSync(script, `wrk.method = "POST"\nwrk.body = '{"reading":21.5,"sensor":"kitchen"}'\n`);
  const [cmd, args] = pin(0, 'wrk', [
    '-t1',
    `-c${connections}`,
    `-d${secs}s`,
    '-s',
    script,
    `${url}/function/echo.openfaas-fn`,
  ]);
  const text = execFileSync(cmd, args, { encoding: 'utf8' });
  const m = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (!m) throw new Error(`unexpected wrk output: ${text}`);
  return Number(m[1]);
}

const all = registeredCases();
const throughput = all.filter((c): c is ThroughputCase => c.kind === 'throughput');
// A selected case brings its ceiling along: the ratio to it, measured in the same run, is the figure that matters.
const unavailable: Record<string, string> = {};
for (const c of throughput) {
  const why = wanted(c.id) ? c.unavailable?.() : undefined;
  if (why) unavailable[c.id] = why;
}
const runnable = throughput.filter((c) => !(c.id in unavailable));
const selected = runnable.filter(
  (c) => wanted(c.id) || runnable.some((x) => wanted(x.id) && x.ceiling === c.id),
);
const runs: { c: ThroughputCase; variant?: { name: string; path: string } }[] = [];
for (const c of selected) {
  runs.push({ c });
  if (c.usesCore) for (const v of variants) runs.push({ c, variant: v });
}
const paramsFor = (c: ThroughputCase, gw: { url: string; child: ChildProcess }): CaseParams => ({
  url: gw.url,
  ...(gw.child.pid === undefined ? {} : { gatewayPid: gw.child.pid }),
  n: Math.max(50, Math.round(n * (c.scale ?? 1))),
  seconds,
  quick: flags.quick,
});
const labelOf = (id: string | undefined) => throughput.find((c) => c.id === id)?.label ?? String(id);
const runLabel = (r: (typeof runs)[number]) => `${r.c.label}${r.variant ? ` [${r.variant.name}]` : ''}`;

if (flags.profile) {
  // One profiled repetition per case (and its ceiling), then where the time went, next to the ceiling.
  const dir = join(flags.out, 'profiles');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, '.gitignore'), '*\n'); // profiles are big and machine-specific: never committed
  const echo = await startServer('echo');
  const summaries = new Map<string, ProfileSummary>();
  const md = [`# pnpm bench --profile — ${new Date().toISOString()}`, ''];
  try {
    for (const r of runs) {
      const file = join(dir, `${r.c.id}${r.variant ? `.${r.variant.name}` : ''}.cpuprofile`);
      const p = { ...paramsFor(r.c, echo), profile: file };
      const { result } = await worker(r.c.id, p, r.variant ? { core: r.variant.path } : {});
      const rep = result as Repetition;
      process.stdout.write(`${runLabel(r)}: ${Math.round(rep.opsPerSec)} ops/s (profiled) -> ${file}\n`);
      const s = summariseProfile(file, p.n);
      summaries.set(`${r.c.id}${r.variant?.name ?? ''}`, s);
      md.push(...profileMarkdown(runLabel(r), s, r.c.ceiling ? summaries.get(r.c.ceiling) : undefined));
    }
  } finally {
    echo.child.kill('SIGTERM');
  }
  writeFileSync(join(flags.out, 'profile.md'), `${md.join('\n')}\n`);
  process.stdout.write(`\n${md.join('\n')}\nwritten to ${join(flags.out, 'profile.md')}\n`);
  process.exit(0);
}

const started = Date.now();
const collected = new Map<(typeof runs)[number], { reps: Repetition[]; maxRssMb: number }>();
const sources: Record<string, SourceRun | string> = {};
const reports: Record<string, unknown> = {};
const info: Record<string, unknown> = {
  node: process.version,
  pinned,
  messagesPerRepetition: n,
  repetitions: reps,
  date: new Date().toISOString(),
};

const needEcho = runs.length > 0 || wanted('wrk') || all.some((c) => c.kind === 'source' && wanted(c.id));
const echo = needEcho ? await startServer('echo') : undefined;
try {
  if (echo) {
    // Repetitions are interleaved (A, B, C, A, B, C, ...), each in a fresh process with its own warm-up, so that
    // background load drifting during the run hits every case alike and the ratios stay comparable.
    for (let rep = 0; rep < reps; rep++) {
      for (const r of runs) {
        const { result, maxRssMb } = await worker(
          r.c.id,
          paramsFor(r.c, echo),
          r.variant ? { core: r.variant.path } : {},
        );
        const entry = collected.get(r) ?? { reps: [], maxRssMb: 0 };
        entry.reps.push(result as Repetition);
        entry.maxRssMb = Math.max(entry.maxRssMb, maxRssMb);
        collected.set(r, entry);
        process.stdout.write(
          `${runLabel(r)} #${rep + 1}: ${Math.round((result as Repetition).opsPerSec)} ops/s\n`,
        );
      }
    }
    if (wanted('wrk')) {
      if (has('wrk')) {
        const secs = Math.min(seconds, 5);
        info['wrk'] = { x64OpsPerSec: wrk(echo.url, 64, secs), x1OpsPerSec: wrk(echo.url, 1, secs) };
      } else info['wrk'] = 'wrk not installed';
      process.stdout.write(`wrk: ${JSON.stringify(info['wrk'])}\n`);
    }
    for (const c of all.filter((x): x is SourceCase => x.kind === 'source' && wanted(x.id))) {
      const why = c.unavailable?.();
      if (why) {
        sources[c.id] = why;
        continue;
      }
      const count = flags.quick ? n : Math.min(n, c.maxMessages ?? n);
      const { result } = await worker(c.id, { url: echo.url, n: count, seconds, quick: flags.quick });
      sources[c.id] = result as SourceRun;
      process.stdout.write(`${c.label}: ${Math.round((result as SourceRun).messagesPerSec)} msg/s\n`);
    }
  }
} finally {
  echo?.child.kill('SIGTERM');
}
for (const c of all.filter((x): x is ReportCase => x.kind === 'report' && wanted(x.id))) {
  const gw = c.gateway === 'none' ? undefined : await startServer(c.gateway);
  try {
    const { result } = await worker(
      c.id,
      { url: gw?.url ?? '', n, seconds, quick: flags.quick },
      c.nodeArgs ? { nodeArgs: c.nodeArgs } : {},
    );
    reports[c.id] = result;
    process.stdout.write(`${c.label}: done\n`);
  } finally {
    gw?.child.kill('SIGTERM');
  }
}

const rows: Row[] = runs.map((r) => {
  const got = collected.get(r) as { reps: Repetition[]; maxRssMb: number };
  const ceilingRun = r.c.ceiling ? runs.find((x) => x.c.id === r.c.ceiling && !x.variant) : undefined;
  return row(
    {
      id: r.c.id,
      case: r.c.label,
      ...(r.variant ? { variant: r.variant.name } : {}),
      ...(r.c.ceiling ? { ceiling: r.c.ceiling } : {}),
      concurrency: r.c.concurrency,
      repetitions: got.reps,
      maxRssMb: Math.round(got.maxRssMb),
    },
    ceilingRun ? collected.get(ceilingRun)?.reps : undefined,
    r.variant
      ? collected.get(runs.find((x) => x.c === r.c && !x.variant) as (typeof runs)[number])?.reps
      : undefined,
  );
});
const targets: Target[] = throughputTargets(rows);
for (const c of selected) {
  const what = `${c.label} throughput / ${labelOf(c.ceiling)}`;
  const t =
    c.minRatio !== undefined
      ? opsTarget(rows, c.id, c.minRatio, what)
      : c.informational
        ? ratioInfo(rows, c.id, what)
        : undefined;
  if (t) {
    // the machine bound only where there is a target: the batch rows' reference row is not an invoke ceiling
    t.measured +=
      c.minRatio === undefined
        ? e2eCpuText(rows, c.id)
        : e2eCpuText(rows, c.id, availableParallelism(), c.minRatio);
    targets.push(t);
  }
}
for (const c of all)
  if (c.kind === 'report' && c.id in reports && c.targets) targets.push(...c.targets(reports[c.id]));

const wrkInfo = info['wrk'] as { x64OpsPerSec: number; x1OpsPerSec: number } | string | undefined;
const undici64 = rows.find((r) => r.id === 'undici-x64');
const md: string[] = [
  `# pnpm bench — ${info['date']}`,
  '',
  `Node ${process.version}; client and gateway ${pinned ? 'pinned to CPU 0 and CPU 1 (taskset)' : 'not pinned (no taskset or one CPU)'}; ` +
    `${n} operations per repetition (x1 cases: a quarter), ${reps} repetition${reps === 1 ? '' : 's'} per case, each in a fresh process after a warm-up, interleaved across cases. ` +
    `Ratios: this row / its ceiling (undici request x64 for concurrent rows, x1 for sequential ones), median of the per-repetition ratios (range); ` +
    'CPU is user+sys of the connector process only.',
  '',
];
if (rows.length > 0) md.push(...throughputMarkdown(rows), '', ...variantsMarkdown(rows));
for (const [id, why] of Object.entries(unavailable)) md.push(`${labelOf(id)}: not run (${why}).`, '');
if (wrkInfo !== undefined)
  md.push(
    typeof wrkInfo === 'string'
      ? `wrk (the gateway's own ceiling): ${wrkInfo}.`
      : `wrk, the gateway's own ceiling (no Node client): ${Math.round(wrkInfo.x64OpsPerSec)} req/s with 64 connections, ` +
          `${Math.round(wrkInfo.x1OpsPerSec)} with 1${undici64 ? ` (undici request x64 reaches ${(undici64.opsPerSec.median / wrkInfo.x64OpsPerSec).toFixed(2)}× of it)` : ''}.`,
    '',
  );
md.push(...targetsMarkdown(targets));
md.push(...sourcesMarkdown(sources, new Map(all.map((c) => [c.id, c.label]))));
for (const c of all)
  if (c.kind === 'report' && c.id in reports) md.push(...(c as ReportCase).markdown(reports[c.id]));
md.push(`Run took ${Math.round((Date.now() - started) / 1000)} s.`);

const text = `${md.join('\n')}\n`;
mkdirSync(flags.out, { recursive: true });
writeFileSync(
  join(flags.out, 'latest.json'),
  `${JSON.stringify({ ...info, rows, unavailable, targets, sources, ...reports }, null, 2)}\n`,
);
writeFileSync(join(flags.out, 'latest.md'), text);
process.stdout.write(`\n${text}\nwritten to ${join(flags.out, 'latest.json')} and latest.md\n`);
