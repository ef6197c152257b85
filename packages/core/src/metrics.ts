import { Counter, Gauge, type Metric, Registry } from 'prom-client';

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
  private readonly deliveries: FastCounter;
  private readonly sourceRestarts: Counter<'source'>;
  private readonly functions = new Map<string, FunctionSeries>();
  private readonly receivedBySource = new Map<string, Map<string, Series>>();
  private readonly unroutedBySource = new Map<string, Series>();
  private readonly deliveriesByStatus = new Map<string, Series>();

  constructor(probe: {
    inFlight: () => number;
    adaptiveLimits?: () => ReadonlyMap<string, number>;
    oldestPendingMs?: () => number;
    topicMap: () => { functions: number; topics: number; lastSyncAt: number | undefined; failures: number };
    sourceConnected: () => { source: string; connected: boolean };
    registry?: Registry;
  }) {
    const registry = (this.registry = probe.registry ?? new Registry());
    const registers = [registry];
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
      'Messages handed to the connector by its source, by topic',
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
        this.reset();
        for (const [fn, limit] of probe.adaptiveLimits?.() ?? []) this.set({ function: fn }, limit);
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

  private fn(fn: string): FunctionSeries {
    let f = this.functions.get(fn);
    if (!f) {
      f = {
        byStatus: new Map(),
        duration: this.duration.series({ function: fn }),
        retries: new Map(),
        deadLetters: new Map(),
      };
      this.functions.set(fn, f);
    }
    return f;
  }

  /** Count one invocation attempt. */
  invocation(fn: string, status: number, durationMs: number): void {
    const f = this.fn(fn);
    let c = f.byStatus.get(status);
    if (!c) f.byStatus.set(status, (c = this.invocations.series({ function: fn, status: String(status) })));
    c.value++;
    this.duration.observe(f.duration, durationMs / 1000);
  }

  /** Count one message received from a source. */
  receivedMessage(source: string, topic: string): void {
    let byTopic = this.receivedBySource.get(source);
    if (!byTopic) this.receivedBySource.set(source, (byTopic = new Map()));
    let c = byTopic.get(topic);
    if (!c) {
      // Bound the label cardinality: past 10,000 topics per source, the rest are counted as topic="_other".
      const label = byTopic.size < 10_000 ? topic : '_other';
      c = byTopic.get(label) ?? this.received.series({ source, topic: label });
      byTopic.set(label, c);
    }
    c.value++;
  }

  /** Count a retry and why (`status_429`, `ERR_TIMEOUT`, `throttled`, ...: a bounded set). */
  retry(fn: string, reason: string): void {
    const f = this.fn(fn);
    let c = f.retries.get(reason);
    if (!c) f.retries.set(reason, (c = this.retries.series({ function: fn, reason })));
    c.value++;
  }

  /** Count a dead letter and why (`status_400`, `ERR_FUNCTION_REJECTED`, `ERR_MESSAGE_EXPIRED`, ...). */
  deadLetter(fn: string, reason: string): void {
    const f = this.fn(fn);
    let c = f.deadLetters.get(reason);
    if (!c) f.deadLetters.set(reason, (c = this.deadLetters.series({ function: fn, reason })));
    c.value++;
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
