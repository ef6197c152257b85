import { defineSource, isShutdownError, type SourceContext } from '@connector/core';
import { testSource } from '../src/index.js';

/**
 * A tiny in-memory broker: per-topic queues, a message stays "in flight" until acked, and what a consumer did not
 * ack is put back when it disconnects (as a broker does for a dead session). The suite checks itself against it.
 */
class MemoryBroker {
  private queues = new Map<string, string[]>();
  private consumers = new Map<string, Set<MemoryConsumer>>();

  publish(topic: string, bodies: string[]): void {
    const q = this.queue(topic);
    q.push(...bodies);
    for (const c of this.consumers.get(topic) ?? []) c.wake();
  }

  queue(topic: string): string[] {
    let q = this.queues.get(topic);
    if (!q) this.queues.set(topic, (q = []));
    return q;
  }

  attach(topic: string, c: MemoryConsumer): void {
    let set = this.consumers.get(topic);
    if (!set) this.consumers.set(topic, (set = new Set()));
    set.add(c);
  }

  detach(topic: string, c: MemoryConsumer, unacked: string[]): void {
    this.consumers.get(topic)?.delete(c);
    this.queue(topic).unshift(...unacked);
  }
}

class MemoryConsumer {
  private wakeUp: (() => void) | undefined;
  private inflight = new Map<number, string>();
  private seq = 0;
  private loop: Promise<void> | undefined;
  private ctx: SourceContext | undefined;
  private tasks = new Set<Promise<void>>();
  readonly name = 'memory';

  constructor(
    private readonly broker: MemoryBroker,
    private readonly topic: string,
  ) {}

  wake(): void {
    this.wakeUp?.();
  }

  async start(ctx: SourceContext): Promise<void> {
    this.ctx = ctx;
    this.broker.attach(this.topic, this);
    ctx.signal.addEventListener('abort', () => this.wake());
    this.loop = this.run(ctx);
  }

  private async run(ctx: SourceContext): Promise<void> {
    const q = this.broker.queue(this.topic);
    while (!ctx.signal.aborted) {
      await ctx.waitForCapacity(ctx.signal);
      const body = ctx.signal.aborted ? undefined : q.shift();
      if (body === undefined) {
        if (ctx.signal.aborted) break;
        await new Promise<void>((r) => (this.wakeUp = r));
        continue;
      }
      const id = ++this.seq;
      this.inflight.set(id, body);
      const task = ctx
        .deliver({ topic: this.topic, body: Buffer.from(body), id: String(id) })
        .then(
          (outcome) => {
            this.inflight.delete(id);
            if (!outcome.ack) {
              q.push(body); // nack: the broker redelivers
              this.wake();
            }
          },
          (err: unknown) => {
            if (!isShutdownError(err)) throw err;
          },
        )
        .finally(() => this.tasks.delete(task));
      this.tasks.add(task);
      await Promise.resolve();
    }
  }

  async stop(): Promise<void> {
    this.wake();
    await this.loop;
    await Promise.allSettled([...this.tasks]);
    this.broker.detach(this.topic, this, [...this.inflight.values()]);
    this.inflight.clear();
    this.ctx = undefined;
  }

  health() {
    return { connected: this.ctx !== undefined };
  }
}

const broker = new MemoryBroker();
const memorySource = defineSource((o: { topic: string }) => new MemoryConsumer(broker, o.topic));

testSource({
  name: 'in-memory broker',
  createSource: ({ topic }) => memorySource({ topic }),
  publish: async (topic, messages) =>
    broker.publish(
      topic,
      messages.map((m) => m.body),
    ),
});
