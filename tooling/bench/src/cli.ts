import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type Repetition, type Spread, spread } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
    messages: { type: 'string' },
    seconds: { type: 'string' },
    out: { type: 'string', default: join(root, 'bench/results') },
  },
});

const has = (cmd: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const taskset = has('taskset') && (await import('node:os')).availableParallelism() >= 2;
const pin = (cpu: number, cmd: string, args: string[]): [string, string[]] =>
  taskset ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args];

/** Start the gateway process on CPU 1; resolves with its URL. */
async function startServer(mode: 'echo' | 'hang'): Promise<{ url: string; child: ChildProcess }> {
  const [cmd, args] = pin(1, process.execPath, [join(here, 'server.js')]);
  const child = spawn(cmd, args, {
    env: { ...process.env, BENCH_MODE: mode },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
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
  name: string,
  params: object,
  extraNode: string[] = [],
): Promise<{ result: unknown; maxRssMb: number }> {
  const [cmd, args] = pin(0, process.execPath, [
    ...extraNode,
    join(here, 'worker.js'),
    name,
    JSON.stringify(params),
  ]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`bench case ${name} failed (exit ${code})`);
  return JSON.parse(out.trim().split('\n').pop() ?? '{}');
}

function wrk(url: string, seconds: number): number | undefined {
  if (!has('wrk')) return undefined;
  const script = join(here, 'wrk-post.lua');
  writeFileSync(script, `wrk.method = "POST"\nwrk.body = '{"reading":21.5,"sensor":"kitchen"}'\n`);
  const [cmd, args] = pin(0, 'wrk', [
    '-t1',
    '-c64',
    `-d${seconds}s`,
    '-s',
    script,
    `${url}/function/echo.openfaas-fn`,
  ]);
  const text = execFileSync(cmd, args, { encoding: 'utf8' });
  const m = /Requests\/sec:\s+([\d.]+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

interface Row {
  case: string;
  opsPerSec: Spread;
  p50Ms: Spread;
  p99Ms: Spread;
  cpuPer10k: Spread;
  maxRssMb: number;
}

const n = Number(flags.messages ?? (flags.quick ? 300 : 20_000));
const reps = flags.quick ? 1 : 5;
const stallSeconds = Number(flags.seconds ?? (flags.quick ? 1 : 5));
const wanted = (c: string) => !flags.only || flags.only.some((o) => c.startsWith(o));

const rows: Row[] = [];
const extras: Record<string, unknown> = {
  node: process.version,
  pinned: taskset,
  messagesPerRepetition: n,
  repetitions: reps,
  date: new Date().toISOString(),
};
const echo = await startServer('echo');
try {
  const throughput: [string, string, number][] = [
    ['ceiling: undici x1', 'undici', 1],
    ['ceiling: undici x64', 'undici', 64],
    ['controller.invoke x1', 'invoke', 1],
    ['controller.invoke x64', 'invoke', 64],
    ['deliver (engine, metrics on) x64', 'deliver', 64],
  ];
  // Repetitions are interleaved (case A, B, C, A, B, C, ...), each in a fresh process with its own warm-up, so that
  // background load drifting during the run hits every case alike and the ratios stay comparable.
  const selected = throughput.filter(([, name]) => wanted(name));
  const collected = new Map<string, { reps: Repetition[]; maxRssMb: number }>();
  for (let rep = 0; rep < reps; rep++) {
    for (const [label, name, concurrency] of selected) {
      const params = { url: echo.url, n: concurrency === 1 ? Math.ceil(n / 4) : n, concurrency, reps: 1 };
      const { result, maxRssMb } = await worker(name, params);
      const entry = collected.get(label) ?? { reps: [], maxRssMb: 0 };
      entry.reps.push(...(result as Repetition[]));
      entry.maxRssMb = Math.max(entry.maxRssMb, maxRssMb);
      collected.set(label, entry);
      process.stdout.write(
        `${label} #${rep + 1}: ${Math.round((result as Repetition[])[0]?.opsPerSec ?? 0)} ops/s\n`,
      );
    }
  }
  for (const [label] of selected) {
    const { reps: rs, maxRssMb } = collected.get(label) as { reps: Repetition[]; maxRssMb: number };
    rows.push({
      case: label,
      opsPerSec: spread(rs.map((r) => r.opsPerSec)),
      p50Ms: spread(rs.map((r) => r.p50Ms)),
      p99Ms: spread(rs.map((r) => r.p99Ms)),
      cpuPer10k: spread(rs.map((r) => r.cpuPer10k)),
      maxRssMb,
    });
  }
  // Each source end to end (one run each after the throughput cases: they include a broker, so they are slower).
  const sourcesRun: Record<string, unknown> = {};
  for (const name of ['source-mqtt', 'source-kafka', 'source-sqs']) {
    if (!wanted(name)) continue;
    if (name === 'source-mqtt' && !has(process.env['MOSQUITTO_BIN'] ?? 'mosquitto')) {
      sourcesRun[name] = 'mosquitto not installed';
      continue;
    }
    const count = flags.quick ? 200 : Math.min(n, name === 'source-sqs' ? 5000 : 20_000);
    sourcesRun[name] = (await worker(name, { url: echo.url, n: count, concurrency: 64, reps: 1 })).result;
    process.stdout.write(
      `${name}: ${Math.round((sourcesRun[name] as { messagesPerSec: number }).messagesPerSec)} msg/s\n`,
    );
  }
  extras['sources'] = sourcesRun;
  if (wanted('wrk'))
    extras['wrk_x64_ops_per_sec'] = wrk(echo.url, flags.quick ? 1 : 5) ?? 'wrk not installed';
} finally {
  echo.child.kill('SIGTERM');
}
if (wanted('match')) extras['match'] = (await worker('match', {})).result;
if (wanted('stalled')) {
  const hang = await startServer('hang');
  try {
    extras['stalled'] = (
      await worker('stalled', { url: hang.url, seconds: stallSeconds }, ['--expose-gc'])
    ).result;
  } finally {
    hang.child.kill('SIGTERM');
  }
}

const ceiling64 = rows.find((r) => r.case === 'ceiling: undici x64');
const ceiling1 = rows.find((r) => r.case === 'ceiling: undici x1');
const ratio = (r: Row) => {
  const base = r.case.endsWith('x1') ? ceiling1 : ceiling64;
  if (!base) return { throughput: Number.NaN, cpu: Number.NaN };
  return {
    throughput: r.opsPerSec.median / base.opsPerSec.median,
    cpu: r.cpuPer10k.median / base.cpuPer10k.median,
  };
};
const fmt = (v: number, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : '–');
const lines = [
  `# pnpm bench — ${extras['date']}`,
  '',
  `Node ${process.version}; client and gateway ${taskset ? 'pinned to CPU 0 and 1' : 'not pinned'}; ${n} messages per repetition (x1 cases: ${Math.ceil(n / 4)}), ${reps} repetitions after a warm-up; min / median / max.`,
  '',
  '| case | ops/s (min / med / max) | p50 ms | p99 ms | CPU s / 10k | peak RSS MB | × ceiling (ops) | × ceiling (CPU) |',
  '|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => {
    const q = ratio(r);
    return `| ${r.case} | ${fmt(r.opsPerSec.min)} / **${fmt(r.opsPerSec.median)}** / ${fmt(r.opsPerSec.max)} | ${fmt(r.p50Ms.median, 2)} | ${fmt(r.p99Ms.median, 2)} | ${fmt(r.cpuPer10k.median, 3)} | ${fmt(r.maxRssMb)} | ${fmt(q.throughput, 2)} | ${fmt(q.cpu, 2)} |`;
  }),
  '',
  `wrk x64 (the gateway's own ceiling): ${typeof extras['wrk_x64_ops_per_sec'] === 'number' ? fmt(extras['wrk_x64_ops_per_sec'] as number) : (extras['wrk_x64_ops_per_sec'] ?? 'not run')}`,
  '',
  '| source end to end | messages | msg/s | CPU s / 10k (incl. publisher) | note |',
  '|---|---|---|---|---|',
  ...Object.entries(
    (extras['sources'] ?? {}) as Record<
      string,
      { messages: number; messagesPerSec: number; cpuPer10k: number; note: string } | string
    >,
  ).map(([k, v]) =>
    typeof v === 'string'
      ? `| ${k} | – | – | – | ${v} |`
      : `| ${k} | ${v.messages} | ${fmt(v.messagesPerSec)} | ${fmt(v.cpuPer10k, 3)} | ${v.note} |`,
  ),
  '',
  `topic match (ns per lookup): ${JSON.stringify(extras['match'] ?? 'not run')}`,
  '',
  `stalled gateway: ${JSON.stringify(extras['stalled'] ?? 'not run')}`,
];
const md = `${lines.join('\n')}\n`;
mkdirSync(flags.out, { recursive: true });
writeFileSync(
  join(flags.out, 'latest.json'),
  `${JSON.stringify({ ...extras, rows: rows.map((r) => ({ ...r, ratio: ratio(r) })) }, null, 2)}\n`,
);
writeFileSync(join(flags.out, 'latest.md'), md);
process.stdout.write(`\n${md}\nwritten to ${join(flags.out, 'latest.json')} and latest.md\n`);
