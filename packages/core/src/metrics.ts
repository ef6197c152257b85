import { readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import { Counter, collectDefaultMetrics, Gauge, type Metric, Registry } from 'prom-client';
import { ERROR_CODES } from './errors.js';
import type { SourceMessage } from './source.js';

/** One labelled series of a hot-path metric: plain numbers, rendered only when /metrics is scraped. */
interface Series {
  readonly labels: Record<string, string>;
  value: number;
}

interface HistogramSeries {
  readonly labels: Record<string, string>;
  readonly counts: Float64Array; // per bucket (not cumulative); last = +Inf
  sum: number;
  count: number;
}

/**
 * A counter whose children are plain objects: `inc` is `series.value++`, with no label hashing per call (prom-client
 * hashes the labels on every `inc`, even through `labels()` children). Registered in a prom-client Registry.
 */
class FastCounter {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  private readonly all: Series[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** A new series with these labels (the caller caches it). */
  series(labels: Record<string, string>): Series {
    const s = { labels, value: 0 };
    this.all.push(s);
    return s;
  }

  async get() {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: this.all.map((s) => ({ labels: s.labels, value: s.value })),
    };
  }

  reset(): void {
    for (const s of this.all) s.value = 0;
  }
}

/** A histogram with the same plain-number series as FastCounter. */
class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly all: HistogramSeries[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  series(labels: Record<string, string>): HistogramSeries {
    const s = { labels, counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
    this.all.push(s);
    return s;
  }

  observe(s: HistogramSeries, value: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && value > (b[i] as number)) i++;
    (s.counts as Float64Array)[i] = ((s.counts as Float64Array)[i] as number) + 1;
    s.sum += value;
    s.count++;
  }

  async get() {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const s of this.all) {
      let acc = 0;
      for (let i = 0; i <= this.buckets.length; i++) {
        acc += s.counts[i] as number;
        const le = i < this.buckets.length ? (this.buckets[i] as number) : '+Inf';
        values.push({ labels: { ...s.labels, le }, value: acc, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const s of this.all) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}

interface FunctionSeries {
  readonly byStatus: Map<number, Series>;
  readonly duration: HistogramSeries;
  readonly retries: Map<string, Series>;
  readonly deadLetters: Map<string, Series>;
}

const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The label of a function the topic map does not list (a name a message asked for, say): one series for all. */
export const UNKNOWN_FUNCTION = '_unknown';
/** The label past the cap of subscription series per source. */
export const OTHER = '_other';
/** Subscription series per source at most; the rest count as `subscription="_other"`. */
export const MAX_SUBSCRIPTION_SERIES = 1000;

/** @connector/core's version, for `connector_build_info` (src/ and dist/ both sit one level below package.json). */
const VERSION: string = (() => {
  try {
    return JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();

/**
 * A bounded label for an HTTP status: the code itself when HTTP defines it (Node's `STATUS_CODES`, ~60 codes) or 0
 * (no response), else its class (`5xx`), else `other`. A gateway answering 599 or 299 adds no series per code.
 */
export function statusLabel(status: number): string {
  if (status === 0 || STATUS_CODES[status] !== undefined) return String(status);
  if (Number.isInteger(status) && status >= 100 && status < 600) return `${Math.floor(status / 100)}xx`;
  return 'other';
}

const REASONS = new Set<string>(['throttled', 'not_found', 'unknown', ...Object.keys(ERROR_CODES)]);

/** A bounded label for a retry or dead-letter reason: `status_<statusLabel>`, an error code, or `other`. */
export function reasonLabel(reason: string): string {
  if (reason.startsWith('status_')) return `status_${statusLabel(Number(reason.slice(7)))}`;
  return REASONS.has(reason) ? reason : 'other';
}

/** Prometheus metrics of one connector; the hot path only bumps plain numbers, formatting happens at scrape time. */
export class ConnectorMetrics {
  /** The registry served on /metrics. */
  readonly registry: Registry;
  private readonly invocations: FastCounter;
  private readonly duration: FastHistogram;
  private readonly retries: FastCounter;
  private readonly deadLetters: FastCounter;
  private readonly unrouted: FastCounter;
  private readonly received: FastCounter;
  private readonly matched: FastCounter;
  private readonly deliveries: FastCounter;
  private readonly sourceRestarts: Counter<'source'>;
  private readonly functions = new Map<string, FunctionSeries>();
  private readonly receivedBySource = new Map<string, Series>();
  private readonly matchedBySource = new Map<string, Map<string, Series>>();
  private readonly knownFunction: (address: string) => boolean;
  private readonly subscriptions: (topic: string) => readonly string[];
  private readonly unroutedBySource = new Map<string, Series>();
  private readonly deliveriesByStatus = new Map<string, Series>();

  constructor(probe: {
    inFlight: () => number;
    adaptiveLimits?: () => ReadonlyMap<string, number>;
    oldestPendingMs?: () => number;
    topicMap: () => { functions: number; topics: number; lastSyncAt: number | undefined; failures: number };
    sourceConnected: () => { source: string; connected: boolean };
    /** True when the topic map lists this function address (others are labelled `_unknown`). Default: all. */
    knownFunction?: (address: string) => boolean;
    /** The subscription patterns (annotation topics) that match a topic. Default: none. */
    subscriptions?: (topic: string) => readonly string[];
    registry?: Registry;
  }) {
    const registry = (this.registry = probe.registry ?? new Registry());
    const registers = [registry];
    this.knownFunction = probe.knownFunction ?? (() => true);
    this.subscriptions = probe.subscriptions ?? (() => []);
    // The standard process_* and nodejs_* metrics, once per registry (a registry passed in may have them already).
    if (registry.getSingleMetric('process_cpu_user_seconds_total') === undefined)
      collectDefaultMetrics({ register: registry });
    new Gauge({
      name: 'connector_build_info',
      help: 'Always 1: the @connector/core version and the source, as labels',
      labelNames: ['version', 'source'],
      registers,
      collect() {
        this.reset();
        this.set({ version: VERSION, source: probe.sourceConnected().source }, 1);
      },
    });
    this.invocations = new FastCounter(
      'connector_invocations_total',
      'Function invocation attempts by function and HTTP status (0 = no response)',
      registry,
    );
    this.duration = new FastHistogram(
      'connector_invocation_duration_seconds',
      'Duration of function invocation attempts',
      DURATION_BUCKETS,
      registry,
    );
    this.retries = new FastCounter(
      'connector_retries_total',
      'Invocation retries by function and reason',
      registry,
    );
    this.deadLetters = new FastCounter(
      'connector_dead_letters_total',
      'Messages dead-lettered, by function and reason',
      registry,
    );
    this.unrouted = new FastCounter(
      'connector_unrouted_messages_total',
      'Messages that matched no function',
      registry,
    );
    this.received = new FastCounter(
      'connector_messages_received_total',
      'Messages handed to the connector by its source (before routing: unrouted ones too)',
      registry,
    );
    this.matched = new FastCounter(
      'connector_messages_matched_total',
      'Messages by the subscription pattern (annotation topic) that matched them; one message can match several',
      registry,
    );
    this.deliveries = new FastCounter(
      'connector_deliveries_total',
      'Settled deliveries by outcome (delivered, failed, dead-lettered, unrouted)',
      registry,
    );
    this.sourceRestarts = new Counter({
      name: 'connector_source_restarts_total',
      help: 'Source restarts after a failure',
      labelNames: ['source'],
      registers,
    });
    new Gauge({
      name: 'connector_inflight_invocations',
      help: 'Function invocations in flight (including retry back-off)',
      registers,
      collect() {
        this.set(probe.inFlight());
      },
    });
    new Gauge({
      name: 'connector_adaptive_limit',
      help: 'Current adaptive concurrency limit per function',
      labelNames: ['function'],
      registers,
      collect() {
        const knownFunction = probe.knownFunction ?? (() => true);
        this.reset();
        for (const [fn, limit] of probe.adaptiveLimits?.() ?? [])
          this.set({ function: knownFunction(fn) ? fn : UNKNOWN_FUNCTION }, limit);
      },
    });
    new Gauge({
      name: 'connector_oldest_pending_message_seconds',
      help: 'Age of the oldest message accepted and not yet settled (0 when none)',
      registers,
      collect() {
        this.set((probe.oldestPendingMs?.() ?? 0) / 1000);
      },
    });
    new Gauge({
      name: 'connector_topic_map_functions',
      help: 'Functions in the topic map',
      registers,
      collect() {
        this.set(probe.topicMap().functions);
      },
    });
    new Gauge({
      name: 'connector_topic_map_topics',
      help: 'Distinct topics in the topic map',
      registers,
      collect() {
        this.set(probe.topicMap().topics);
      },
    });
    new Gauge({
      name: 'connector_topic_map_last_sync_timestamp_seconds',
      help: 'Unix time of the last successful topic-map rebuild (0 = never)',
      registers,
      collect() {
        const t = probe.topicMap().lastSyncAt;
        this.set(t === undefined ? 0 : t / 1000);
      },
    });
    new Gauge({
      name: 'connector_topic_map_consecutive_failures',
      help: 'Topic-map rebuilds failed in a row',
      registers,
      collect() {
        this.set(probe.topicMap().failures);
      },
    });
    new Gauge({
      name: 'connector_source_connected',
      help: '1 when the source is connected to its broker',
      labelNames: ['source'],
      registers,
      collect() {
        const s = probe.sourceConnected();
        this.reset();
        this.set({ source: s.source }, s.connected ? 1 : 0);
      },
    });
  }

  /** The series of a function the map lists; every other name shares the `_unknown` series (and no cache slot). */
  private fn(address: string): FunctionSeries {
    const f = this.functions.get(address);
    if (f) return f;
    const label = this.knownFunction(address) ? address : UNKNOWN_FUNCTION;
    let s = this.functions.get(label);
    if (!s) {
      s = {
        byStatus: new Map(),
        duration: this.duration.series({ function: label }),
        retries: new Map(),
        deadLetters: new Map(),
      };
      this.functions.set(label, s);
    }
    return s;
  }

  /** Count one invocation attempt. */
  invocation(fn: string, status: number, durationMs: number): void {
    const f = this.fn(fn);
    let c = f.byStatus.get(status);
    if (!c) {
      const label = statusLabel(status);
      for (const [other, series] of f.byStatus) if (statusLabel(other) === label) c = series;
      c ??= this.invocations.series({ function: this.label(f), status: label });
      f.byStatus.set(status, c);
    }
    c.value++;
    this.duration.observe(f.duration, durationMs / 1000);
  }

  /**
   * Count one message received from a source, and each subscription pattern its topic matches (a message that
   * names its functions matches none). The concrete topic is never a label: it grows with the data.
   */
  receivedMessage(source: string, msg: Pick<SourceMessage, 'topic' | 'functions'>): void {
    let c = this.receivedBySource.get(source);
    if (!c) this.receivedBySource.set(source, (c = this.received.series({ source })));
    c.value++;
    if (msg.functions !== undefined) return;
    const subs = this.subscriptions(msg.topic);
    if (subs.length === 0) return;
    let bySub = this.matchedBySource.get(source);
    if (!bySub) this.matchedBySource.set(source, (bySub = new Map()));
    for (let i = 0; i < subs.length; i++) {
      const sub = subs[i] as string;
      let m = bySub.get(sub);
      if (!m) {
        const label = bySub.size < MAX_SUBSCRIPTION_SERIES ? sub : OTHER;
        m = bySub.get(label) ?? this.matched.series({ source, subscription: label });
        bySub.set(label, m);
      }
      m.value++;
    }
  }

  /** Count a retry and why (`status_429`, `ERR_TIMEOUT`, `throttled`, ...: a bounded set). */
  retry(fn: string, reason: string): void {
    const f = this.fn(fn);
    const label = reasonLabel(reason);
    let c = f.retries.get(label);
    if (!c) f.retries.set(label, (c = this.retries.series({ function: this.label(f), reason: label })));
    c.value++;
  }

  /** Count a dead letter and why (`status_400`, `ERR_FUNCTION_REJECTED`, `ERR_MESSAGE_EXPIRED`, ...). */
  deadLetter(fn: string, reason: string): void {
    const f = this.fn(fn);
    const label = reasonLabel(reason);
    let c = f.deadLetters.get(label);
    if (!c)
      f.deadLetters.set(label, (c = this.deadLetters.series({ function: this.label(f), reason: label })));
    c.value++;
  }

  /** The function label of a function's series. */
  private label(f: FunctionSeries): string {
    return f.duration.labels['function'] as string;
  }

  /** Count an unrouted message. */
  unroutedMessage(source: string): void {
    let c = this.unroutedBySource.get(source);
    if (!c) this.unroutedBySource.set(source, (c = this.unrouted.series({ source })));
    c.value++;
  }

  /** Count a settled delivery. */
  delivery(status: string): void {
    let c = this.deliveriesByStatus.get(status);
    if (!c) this.deliveriesByStatus.set(status, (c = this.deliveries.series({ status })));
    c.value++;
  }

  /** Count a source restart. */
  restart(source: string): void {
    this.sourceRestarts.labels(source).inc();
  }
}
