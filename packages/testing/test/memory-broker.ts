import {
  HealthState,
  InFlight,
  type Source,
  type SourceContext,
  type SourceHealth,
  settleDelivery,
} from '@connector/core';

/** A message a consumer took from the broker: in flight at the broker until acked or released. */
interface Lease {
  readonly body: string;
  /** Done: the broker forgets it. */
  ack(): void;
  /** Not done: the broker puts it back at the head of the queue (a nack, or the consumer went away). */
  release(): void;
}

interface TopicState {
  queue: string[];
  leased: Set<Lease>;
  waiters: Set<() => void>;
}

/**
 * A tiny in-memory broker: per-topic queues; a message a consumer takes stays in flight at the broker until acked,
 * and goes back to the head of the queue when released. The suite checks itself against it.
 */
export class MemoryBroker {
  private readonly topics = new Map<string, TopicState>();

  private state(topic: string): TopicState {
    let s = this.topics.get(topic);
    if (!s) this.topics.set(topic, (s = { queue: [], leased: new Set(), waiters: new Set() }));
    return s;
  }

  /** Append messages and wake the consumers. */
  publish(topic: string, bodies: string[]): void {
    const s = this.state(topic);
    s.queue.push(...bodies);
    this.wake(s);
  }

  /** Take the next message, or undefined when the queue is empty. */
  take(topic: string): Lease | undefined {
    const s = this.state(topic);
    const body = s.queue.shift();
    if (body === undefined) return undefined;
    let open = true;
    const lease: Lease = {
      body,
      ack: () => {
        if (open) s.leased.delete(lease);
        open = false;
      },
      release: () => {
        if (!open) return;
        open = false;
        s.leased.delete(lease);
        s.queue.unshift(body);
        this.wake(s);
      },
    };
    s.leased.add(lease);
    return lease;
  }

  /** Resolves when a message may be available (or at once when one is). */
  available(topic: string, signal?: AbortSignal): Promise<void> {
    const s = this.state(topic);
    if (s.queue.length > 0 || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        s.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      s.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Messages of `topic` handed to consumers and not acked or released. */
  inFlight(topic: string): number {
    return this.state(topic).leased.size;
  }

  private wake(s: TopicState): void {
    for (const w of [...s.waiters]) w();
  }
}

/** Ways the broken sources break the contract (the correct source has none). */
export type Flaw =
  | 'acks-early'
  | 'acks-on-shutdown'
  | 'ignores-capacity'
  | 'buffers-ahead'
  | 'stop-does-not-wait'
  | 'consumes-after-stop'
  | 'no-restart'
  | 'no-health';

/** A source on the memory broker, correct unless given flaws. */
export function memorySource(broker: MemoryBroker, topic: string, flaws: readonly Flaw[] = []): Source {
  const flawed = (f: Flaw) => flaws.includes(f);
  const health = new HealthState();
  const inFlight = new InFlight();
  let run: { ctx: SourceContext; loop: Promise<void>; leases: Set<Lease> } | undefined;
  let starts = 0;

  const deliver = (ctx: SourceContext, lease: Lease, leases: Set<Lease>) => {
    leases.add(lease);
    if (flawed('acks-early')) lease.ack();
    const settled = settleDelivery(ctx.deliver({ topic, body: Buffer.from(lease.body) })).then((decision) => {
      if (decision === 'ack' || (decision === 'shutdown' && flawed('acks-on-shutdown'))) lease.ack();
      else if (decision === 'nack') lease.release();
      // 'shutdown': neither; stop() releases it, so the broker hands it to the next consumer.
      if (decision !== 'shutdown' || flawed('acks-on-shutdown')) leases.delete(lease);
    });
    void inFlight.track(settled);
  };

  const loop = async (ctx: SourceContext, leases: Set<Lease>) => {
    const signal = flawed('consumes-after-stop') ? new AbortController().signal : ctx.signal;
    const buffer: Lease[] = [];
    while (!signal.aborted) {
      if (flawed('buffers-ahead')) {
        // Drains the broker into memory whatever the capacity, then delivers only with capacity.
        for (let l = broker.take(topic); l; l = broker.take(topic)) buffer.push(l);
      }
      if (!flawed('ignores-capacity')) await ctx.waitForCapacity(signal);
      if (signal.aborted) break;
      const lease = buffer.shift() ?? broker.take(topic);
      if (lease === undefined) {
        await broker.available(topic, signal);
        continue;
      }
      deliver(ctx, lease, leases);
      await Promise.resolve();
    }
  };

  const source: Source & { health?: () => SourceHealth } = {
    name: 'memory',
    async start(ctx) {
      starts++;
      if (flawed('no-restart') && starts > 1) return;
      const leases = new Set<Lease>();
      health.up();
      run = { ctx, leases, loop: loop(ctx, leases) };
    },
    async stop() {
      const r = run;
      run = undefined;
      health.down();
      if (!r) return;
      if (flawed('consumes-after-stop')) return;
      await r.loop;
      if (!flawed('stop-does-not-wait')) await inFlight.idle();
      for (const l of r.leases) l.release(); // not settled: the broker redelivers them
    },
  };
  if (!flawed('no-health')) source.health = () => health.snapshot();
  return source;
}
