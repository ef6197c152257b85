import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Prometheus metrics of one connector; label children are cached so the hot path does no label hashing. */
export class ConnectorMetrics {
  /** The registry served on /metrics. */
  readonly registry: Registry;
  private readonly invocations: Counter<'function' | 'status'>;
  private readonly duration: Histogram<'function'>;
  private readonly retries: Counter<'function'>;
  private readonly deadLetters: Counter<'function'>;
  private readonly unrouted: Counter<'source'>;
  private readonly received: Counter<'source' | 'topic'>;
  private readonly deliveries: Counter<'status'>;
  private readonly sourceRestarts: Counter<'source'>;
  private readonly invocationChildren = new Map<string, Counter.Internal>();
  private readonly durationChildren = new Map<string, Histogram.Internal<'function'>>();
  private readonly receivedChildren = new Map<string, Counter.Internal>();
  private readonly deliveryChildren = new Map<string, Counter.Internal>();

  constructor(probe: {
    inFlight: () => number;
    topicMap: () => { functions: number; topics: number; lastSyncAt: number | undefined; failures: number };
    sourceConnected: () => { source: string; connected: boolean };
    registry?: Registry;
  }) {
    const registers = [(this.registry = probe.registry ?? new Registry())];
    this.invocations = new Counter({
      name: 'connector_invocations_total',
      help: 'Function invocation attempts by function and HTTP status (0 = no response)',
      labelNames: ['function', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'connector_invocation_duration_seconds',
      help: 'Duration of function invocation attempts',
      labelNames: ['function'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.retries = new Counter({
      name: 'connector_retries_total',
      help: 'Invocation retries',
      labelNames: ['function'],
      registers,
    });
    this.deadLetters = new Counter({
      name: 'connector_dead_letters_total',
      help: 'Messages dead-lettered after retries, by function',
      labelNames: ['function'],
      registers,
    });
    this.unrouted = new Counter({
      name: 'connector_unrouted_messages_total',
      help: 'Messages that matched no function',
      labelNames: ['source'],
      registers,
    });
    this.received = new Counter({
      name: 'connector_messages_received_total',
      help: 'Messages handed to the connector by its source, by topic',
      labelNames: ['source', 'topic'],
      registers,
    });
    this.deliveries = new Counter({
      name: 'connector_deliveries_total',
      help: 'Settled deliveries by outcome (delivered, failed, dead-lettered, unrouted)',
      labelNames: ['status'],
      registers,
    });
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

  /** Count one invocation attempt. */
  invocation(fn: string, status: number, durationMs: number): void {
    const key = `${fn}\u0000${status}`;
    let c = this.invocationChildren.get(key);
    if (!c) this.invocationChildren.set(key, (c = this.invocations.labels(fn, String(status))));
    c.inc();
    let h = this.durationChildren.get(fn);
    if (!h) this.durationChildren.set(fn, (h = this.duration.labels(fn)));
    h.observe(durationMs / 1000);
  }

  /** Count one message received from a source. */
  receivedMessage(source: string, topic: string): void {
    const key = `${source}\u0000${topic}`;
    let c = this.receivedChildren.get(key);
    if (!c) {
      if (this.receivedChildren.size > 10_000) this.receivedChildren.clear();
      this.receivedChildren.set(key, (c = this.received.labels(source, topic)));
    }
    c.inc();
  }

  /** Count a retry. */
  retry(fn: string): void {
    this.retries.labels(fn).inc();
  }

  /** Count a dead letter. */
  deadLetter(fn: string): void {
    this.deadLetters.labels(fn).inc();
  }

  /** Count an unrouted message. */
  unroutedMessage(source: string): void {
    this.unrouted.labels(source).inc();
  }

  /** Count a settled delivery. */
  delivery(status: string): void {
    let c = this.deliveryChildren.get(status);
    if (!c) this.deliveryChildren.set(status, (c = this.deliveries.labels(status)));
    c.inc();
  }

  /** Count a source restart. */
  restart(source: string): void {
    this.sourceRestarts.labels(source).inc();
  }
}
