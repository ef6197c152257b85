import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { FunctionInfo } from '@connector/core';
import { core } from '../core.js';
import { registerCase } from '../registry.js';

/** What one topic change costs at one size. */
export interface TopicsRow {
  /** Topics (= functions, one filter each; half wildcards). */
  topics: number;
  /** `parseTopics` of one annotation listing every topic, ms. */
  parseMs: number;
  /** Building the topic map (what each rebuild that changed something does), ms. */
  mapMs: number;
  /** The MQTT source's filter reduction (`reduceFilters`) over every filter, ms. */
  reduceMs: number;
  /** How long the event loop was blocked while the three ran back to back (a due timer's lateness), ms. */
  loopDelayMaxMs: number;
}

/** Run `fn` once and return its wall time in ms. */
function timed(fn: () => unknown): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

registerCase<TopicsRow[]>({
  kind: 'report',
  id: 'topics',
  label: 'topic change at 10,000 and 100,000 topics',
  gateway: 'none',
  async run(p) {
    const { reduceFilters } = await import('@connector/source-mqtt');
    const rows: TopicsRow[] = [];
    for (const n of p.quick ? [1000, 10_000] : [10_000, 100_000]) {
      const topics = Array.from({ length: n }, (_, i) =>
        i % 2 === 0 ? `site/${i}/+/temp` : i % 3 === 0 ? `site/${i % 97}/#` : `site/${i}/room/temp`,
      );
      const annotation = topics.join(',');
      const h = monitorEventLoopDelay({ resolution: 1 });
      h.enable();
      await new Promise((r) => setImmediate(r));
      // A timer due at once: how late it fires is how long the loop was blocked by the change.
      const armed = performance.now();
      let lateMs = 0;
      const probe = new Promise<void>((r) =>
        setTimeout(() => {
          lateMs = performance.now() - armed;
          r();
        }, 0),
      );
      let parsed: string[] = [];
      const parseMs = timed(() => {
        parsed = core.parseTopics(annotation);
      });
      const fns: FunctionInfo[] = parsed.map((topic, i) => ({
        name: `f${i}`,
        namespace: 'openfaas-fn',
        address: `f${i}.openfaas-fn`,
        topics: [topic],
        annotations: { topic },
      }));
      const mapMs = timed(() => new core.TopicMap(fns, 'mqtt'));
      const reduceMs = timed(() => reduceFilters(parsed));
      await probe;
      h.disable();
      rows.push({ topics: n, parseMs, mapMs, reduceMs, loopDelayMaxMs: Math.max(lateMs, h.max / 1e6) });
    }
    return rows;
  },
  markdown(rows) {
    return [
      '## Topic change (one rebuild with N annotated topics, half of them MQTT wildcards)',
      '',
      '| topics | parseTopics ms | TopicMap ms | reduceFilters (MQTT source) ms | longest event-loop delay ms |',
      '|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.topics} | ${r.parseMs.toFixed(1)} | ${r.mapMs.toFixed(1)} | ${r.reduceMs.toFixed(1)} | ${r.loopDelayMaxMs.toFixed(1)} |`,
      ),
      '',
    ];
  },
  targets(rows) {
    const first = rows[0];
    const last = rows[rows.length - 1];
    if (!first || !last || first === last) return [];
    const f = last.topics / first.topics;
    const cost = (r: TopicsRow) => r.parseMs + r.mapMs + r.reduceMs;
    const growth = cost(last) / cost(first);
    return [
      {
        what: 'a topic change is near-linear in the number of topics (was quadratic)',
        target: `< ${(f * 2).toFixed(0)}× for ${f}× the topics`,
        measured: `${growth.toFixed(1)}× (${cost(first).toFixed(0)} → ${cost(last).toFixed(0)} ms)`,
        met: growth < f * 2,
      },
    ];
  },
});
