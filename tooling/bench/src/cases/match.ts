import type { FunctionInfo } from '@connector/core';
import { core } from '../core.js';
import { registerCase } from '../registry.js';
import { spread } from '../stats.js';

/** ns per lookup at one map size (median of the measured rounds). */
export interface MatchRow {
  /** Rounds and lookups per round behind each median. */
  rounds: number;
  lookups: number;
  functions: number;
  /** Exact matcher: a hash lookup. */
  exactNs: number;
  /** MQTT wildcards, topics seen before (the per-topic cache). */
  mqttCachedNs: number;
  /** MQTT wildcards, a new topic every lookup (the trie walk plus a cache insert). */
  mqttNs: number;
}

/** Median ns per call of `fn(k)` over `lookups` calls, from `rounds` rounds. */
function nsPerOp(rounds: number, lookups: number, fn: (k: number) => number): number {
  const out: number[] = [];
  let found = 0;
  for (let r = 0; r < rounds; r++) {
    const t = performance.now();
    for (let k = 0; k < lookups; k++) found += fn(k);
    out.push(((performance.now() - t) * 1e6) / lookups);
  }
  if (found === 0) throw new Error('bench: no topic matched');
  return spread(out).median;
}

registerCase<MatchRow[]>({
  kind: 'report',
  id: 'match',
  label: 'topic match',
  gateway: 'none',
  async run(p) {
    const rows: MatchRow[] = [];
    const lookups = p.quick ? 20_000 : 200_000;
    const rounds = p.quick ? 1 : 5;
    for (const size of [100, 1000, 10_000]) {
      const exactFns: FunctionInfo[] = [];
      const mqttFns: FunctionInfo[] = [];
      for (let i = 0; i < size; i++) {
        const mk = (topic: string): FunctionInfo => ({
          name: `f${i}`,
          namespace: 'openfaas-fn',
          address: `f${i}.openfaas-fn`,
          topics: core.parseTopics(topic),
          annotations: { topic },
        });
        exactFns.push(mk(`topic-${i}`));
        mqttFns.push(mk(i % 2 === 0 ? `site/${i}/+/temp` : `site/${i}/#`));
      }
      const exact = new core.TopicMap(exactFns, 'exact');
      const mqtt = new core.TopicMap(mqttFns, 'mqtt');
      // The same working set of 1,000 looked-up topics at every size, so only the map's size changes.
      const topics = Array.from({ length: 1000 }, (_, k) => `topic-${(k * 7919) % size}`);
      const mtopics = Array.from({ length: 1000 }, (_, k) => `site/${(k * 7919) % size}/kitchen/temp`);
      let fresh = 0;
      const exactNs = nsPerOp(rounds, lookups, (k) => exact.match(topics[k % 1000] as string).length);
      const mqttCachedNs = nsPerOp(rounds, lookups, (k) => mqtt.match(mtopics[k % 1000] as string).length);
      const mqttNs = nsPerOp(
        rounds,
        lookups,
        (k) => mqtt.match(`site/${(k * 7919) % size}/r${fresh++}/temp`).length,
      );
      rows.push({ rounds, lookups, functions: size, exactNs, mqttCachedNs, mqttNs });
    }
    return rows;
  },
  markdown(rows) {
    const first = rows[0];
    const last = rows[rows.length - 1];
    const lines = [
      `## Topic match (ns per lookup, median of ${first?.rounds} round(s) of ${first?.lookups} lookups)`,
      '',
      '| functions (= topics) | exact | MQTT wildcard, cached topic | MQTT wildcard, new topic each lookup |',
      '|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.functions} | ${r.exactNs.toFixed(0)} | ${r.mqttCachedNs.toFixed(0)} | ${r.mqttNs.toFixed(0)} |`,
      ),
    ];
    if (first && last && first !== last) {
      const f = last.functions / first.functions;
      lines.push(
        '',
        `From ${first.functions} to ${last.functions} functions (${f}×): exact ${(last.exactNs / first.exactNs).toFixed(1)}×, ` +
          `wildcard ${(last.mqttNs / first.mqttNs).toFixed(1)}× (uncached), ${(last.mqttCachedNs / first.mqttCachedNs).toFixed(1)}× (cached). ` +
          'Proportional would be ' +
          `${f}×; what growth there is comes from memory (a bigger map no longer fits the CPU caches), not from scanning.`,
      );
    }
    return [...lines, ''];
  },
  targets(rows) {
    const first = rows[0];
    const last = rows[rows.length - 1];
    if (!first || !last || first === last) return [];
    const f = last.functions / first.functions;
    const growth = (a: number, b: number) => `${(b / a).toFixed(1)}× for ${f}× the functions`;
    return [
      {
        what: 'exact topic match is O(1)',
        target: '< 3× (proportional would be 100×)',
        measured: growth(first.exactNs, last.exactNs),
        met: last.exactNs / first.exactNs < 3,
      },
      {
        what: 'MQTT wildcard match (new topic each lookup) is not proportional to the functions',
        target: '< 10×',
        measured: growth(first.mqttNs, last.mqttNs),
        met: last.mqttNs / first.mqttNs < 10,
      },
    ];
  },
});
