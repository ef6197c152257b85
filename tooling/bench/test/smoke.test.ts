import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

// Runs the compiled harness (turbo builds it before this test) with tiny N, so it cannot rot. No timing asserted.
describe('pnpm bench --quick', () => {
  it('runs every case and writes JSON and Markdown with numbers in them', async () => {
    const out = mkdtempSync(join(tmpdir(), 'bench-'));
    await promisify(execFile)(
      process.execPath,
      [join(import.meta.dirname, '../dist/cli.js'), '--quick', '--messages', '200', '--out', out],
      {
        timeout: 120_000,
      },
    );
    const json = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    const cases = json.rows.map((r: { case: string }) => r.case);
    expect(cases).toEqual([
      'ceiling: undici x1',
      'ceiling: undici x64',
      'controller.invoke x1',
      'controller.invoke x64',
      'deliver (engine, metrics on) x64',
    ]);
    for (const r of json.rows) {
      for (const k of ['opsPerSec', 'p50Ms', 'p99Ms', 'cpuPer10k']) expect(r[k].median).toBeGreaterThan(0);
      expect(r.ratio.throughput).toBeGreaterThan(0);
    }
    expect(Object.keys(json.match)).toContain('exact_10000_ns');
    expect(Object.keys(json.match)).toContain('mqtt_10000_ns');
    expect(json.stalled.offered).toBeGreaterThan(0);
    for (const name of ['source-mqtt', 'source-kafka', 'source-sqs'])
      expect(json.sources[name].messagesPerSec, name).toBeGreaterThan(0);
    expect(json.stalled.inFlight).toBe(64);
    expect(readFileSync(join(out, 'latest.md'), 'utf8')).toContain('| deliver (engine, metrics on) x64 |');
  }, 150_000);
});
