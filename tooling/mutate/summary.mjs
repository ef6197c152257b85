// Summarise Stryker's JSON reports under bench/results/mutation: score per file and every surviving mutant.
// `node tooling/mutate/summary.mjs [dir]`. Also prints an upper bound of each file's score with only the test files
// that existed before the mutation work (a mutant none of them covers could not have been killed by them).
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = process.argv[2] ?? 'bench/results/mutation';
const NEW_TEST_FILES = [
  'ack.test.ts',
  'headers.test.ts',
  'dead-letters.test.ts',
  'engine-unit.test.ts',
  'invoker.test.ts',
  'test/deleter.test.ts', // source-sqs
  'test/acks.test.ts', // source-mqtt (src/acks.test.ts is older)
  'test/commit.test.ts', // source-kafka
];

function reports(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...reports(p));
    else if (name === 'mutation.json') out.push(p);
  }
  return out;
}

const rows = [];
const survivors = [];
for (const path of reports(root)) {
  const report = JSON.parse(readFileSync(path, 'utf8'));
  const oldTests = new Set();
  for (const [file, tf] of Object.entries(report.testFiles ?? {}))
    if (!NEW_TEST_FILES.some((n) => file.endsWith(n))) for (const t of tf.tests) oldTests.add(t.id);
  for (const [file, f] of Object.entries(report.files)) {
    const lines = f.source.split('\n');
    const c = {
      Killed: 0,
      Timeout: 0,
      Survived: 0,
      NoCoverage: 0,
      Ignored: 0,
      RuntimeError: 0,
      CompileError: 0,
    };
    let oldReach = 0;
    for (const m of f.mutants) {
      c[m.status] = (c[m.status] ?? 0) + 1;
      const detected = m.status === 'Killed' || m.status === 'Timeout';
      if (detected && (m.coveredBy ?? m.killedBy ?? []).some((id) => oldTests.has(id))) oldReach++;
      if (m.status === 'Survived' || m.status === 'NoCoverage') {
        const l = m.location.start.line;
        survivors.push(
          `${file.replace(/^.*packages\//, '')}:${l} ${m.status} ${m.mutatorName} → ${JSON.stringify(m.replacement).slice(0, 80)}\n      ${(lines[l - 1] ?? '').trim().slice(0, 140)}`,
        );
      }
    }
    const valid = c.Killed + c.Timeout + c.Survived + c.NoCoverage;
    const score = valid === 0 ? 100 : (100 * (c.Killed + c.Timeout)) / valid;
    rows.push({
      file: file.replace(/^.*packages\//, ''),
      score: score.toFixed(1),
      'old tests ≤': valid === 0 ? '-' : ((100 * oldReach) / valid).toFixed(1),
      killed: c.Killed,
      timeout: c.Timeout,
      survived: c.Survived,
      'no cov': c.NoCoverage,
      ignored: c.Ignored,
    });
  }
}
console.table(rows);
console.log(`\n${survivors.length} surviving mutants:\n${survivors.join('\n')}`);
// The score table as Markdown beside the reports (bench/results is gitignored: copy it into README.md's results).
const md = [
  `| ${Object.keys(rows[0] ?? {}).join(' | ')} |`,
  `| ${Object.keys(rows[0] ?? {})
    .map(() => '---')
    .join(' | ')} |`,
  ...rows.map((r) => `| ${Object.values(r).join(' | ')} |`),
].join('\n');
writeFileSync(
  join(root, 'summary.md'),
  `${md}\n\n${survivors.length} surviving mutants:\n\n${survivors.map((s) => `- ${s.replace(/\n\s+/, ': ')}`).join('\n')}\n`,
);
