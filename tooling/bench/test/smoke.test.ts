import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { registeredCases } from '../src/cases.js';

const isNum = (v: unknown) => typeof v === 'number' && Number.isFinite(v);

// Runs the compiled harness (turbo builds it before this test) with tiny N, so it cannot rot. No timing asserted.
describe('pnpm bench --quick', () => {
  it('runs every registered case and writes JSON and Markdown with numbers in them', async () => {
    const out = mkdtempSync(join(tmpdir(), 'bench-'));
    try {
      await promisify(execFile)(
        process.execPath,
        [join(import.meta.dirname, '../dist/cli.js'), '--quick', '--messages', '200', '--out', out],
        { timeout: 360_000 }, // 51 s alone; CI runs it beside every other package's tests on 2 cores
      );
      const json = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
      const md = readFileSync(join(out, 'latest.md'), 'utf8');
      const cases = registeredCases();
      const throughput = cases.filter((c) => c.kind === 'throughput');
      // x1/x64 ceilings, dispatch, invoke x1/x3/x16/x64, deliver x2, deliver traced x2, 1k/64k ceilings + invoke,
      // 7 e2e sources (MQTT x3, Kafka, SQS, NATS, RabbitMQ), 4 e2e batch (Kafka and SQS, batch size 1 and 100),
      // 2 batch (in process, size 1 and 100)
      expect(throughput.length).toBe(29);
      // A case whose broker is missing here (Mosquitto, nats-server, RabbitMQ) is skipped and named with its reason,
      // and only such a case: every other one reported a row.
      const skipped: Record<string, string> = json.unavailable;
      for (const [id, why] of Object.entries(skipped)) {
        expect(throughput.find((c) => c.id === id)?.unavailable, id).toBeTypeOf('function');
        expect(md).toContain(`not run (${why})`);
      }
      const ran = throughput.filter((c) => !(c.id in skipped));
      expect(json.rows.map((r: { id: string }) => r.id)).toEqual(ran.map((c) => c.id));
      for (const r of json.rows) {
        for (const k of ['opsPerSec', 'p50Ms', 'p99Ms', 'cpuPer10k'])
          for (const s of ['min', 'median', 'max']) expect(isNum(r[k][s]), `${r.id} ${k}.${s}`).toBe(true);
        expect(r.repetitions).toHaveLength(1);
        expect(r.maxRssMb).toBeGreaterThan(0);
        expect(isNum(r.ratio.throughput.median) && isNum(r.ratio.cpu.median), r.id).toBe(true);
        expect(md).toContain(`| ${r.case} |`);
      }
      expect(json.rows.find((r: { id: string }) => r.id === 'undici-x64').ceiling).toBeUndefined();
      expect(json.rows.find((r: { id: string }) => r.id === 'deliver-x64').ceiling).toBe('undici-x64');
      expect(json.rows.find((r: { id: string }) => r.id === 'invoke-x1').ceiling).toBe('undici-x1');
      // wrk is optional: a figure when installed, the reason otherwise.
      expect(
        json.wrk === 'wrk not installed' || (isNum(json.wrk.x64OpsPerSec) && isNum(json.wrk.x1OpsPerSec)),
      ).toBe(true);
      for (const c of cases.filter((x) => x.kind === 'source')) {
        const v = json.sources[c.id];
        expect(typeof v === 'string' || isNum(v.messagesPerSec), c.id).toBe(true);
      }
      expect(json.match.map((r: { functions: number }) => r.functions)).toEqual([100, 1000, 10_000]);
      for (const r of json.match)
        for (const k of ['exactNs', 'mqttCachedNs', 'mqttNs']) expect(isNum(r[k])).toBe(true);
      expect(json.stalled.inFlight).toBe(64);
      expect(json.stalled.offered).toBe(64);
      for (const k of ['startRssMb', 'peakRssMb', 'endRssMb', 'deltaMb'])
        expect(isNum(json.stalled[k])).toBe(true);
      expect(json['stalled-eager'].queued).toBe(2000);
      expect(json['stalled-eager'].inFlight).toBe(64);
      expect(json.topics.map((r: { topics: number }) => r.topics)).toEqual([1000, 10_000]);
      for (const r of json.topics)
        for (const k of ['parseMs', 'mapMs', 'reduceMs', 'loopDelayMaxMs']) expect(isNum(r[k])).toBe(true);
      expect(json.adaptive.map((r: { mode: string }) => r.mode)).toHaveLength(3);
      for (const r of json.adaptive) expect(r.deadLettered + r.failed, r.mode).toBe(0);
      // The batch rows throw unless every message was delivered and batching cut the requests.
      expect(json.rows.find((r: { id: string }) => r.id === 'batch-100').ceiling).toBe('batch-1');
      // 9 throughput targets, 7 e2e sources (less the skipped ones), 1 batch (size 100 / size 1), 2 topic-match,
      // 1 topic-change, 3 adaptive, 1 memory; whether met is not asserted here. Plus 2 information lines (e2e batch
      // size 100 / 1, Kafka and SQS), without `met`.
      const skippedTargets = throughput.filter((c) => c.id in skipped && c.minRatio !== undefined).length;
      expect(json.targets).toHaveLength(26 - skippedTargets);
      const info = json.targets.filter((t: { met?: boolean }) => t.met === undefined);
      expect(info.map((t: { what: string }) => t.what)).toEqual([
        'Kafka batch size 100, end to end throughput / Kafka batch size 1, end to end',
        'SQS batch size 100, end to end throughput / SQS batch size 1, end to end',
      ]);
      for (const id of ['e2e-batch-kafka-100', 'e2e-batch-sqs-100'])
        expect(json.rows.find((r: { id: string }) => r.id === id).ceiling).toBe(id.replace(/100$/, '1'));
      expect(md).toContain('## Targets');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 390_000);
});
