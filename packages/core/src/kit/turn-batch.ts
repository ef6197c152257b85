/**
 * Items queued during one turn of the event loop, handed to `flush` together in the next check phase
 * (setImmediate). Deliveries settle one per HTTP response, each in an I/O callback of its own: a source that sent
 * its ack there wrote one socket write (and woke its broker) per message. Queued here, the acks of a turn leave in
 * one flush: one write (NATS), or one cumulative ack for a settled prefix (AMQP `multiple`).
 */
export class TurnBatch<T> {
  private items: T[] = [];
  private flushed: Promise<void> | undefined;
  private release: (() => void) | undefined;
  private scheduled = false;

  /** `flush` gets the items of one turn, in the order they were added; it handles its own errors. */
  constructor(private readonly flush: (items: T[]) => void) {}

  /** Items queued and not flushed yet. */
  get size(): number {
    return this.items.length;
  }

  /** Queue `item` for this turn's flush; resolves once that flush ran (never rejects). */
  add(item: T): Promise<void> {
    this.items.push(item);
    if (this.flushed === undefined) {
      this.flushed = new Promise((resolve) => {
        this.release = resolve;
      });
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.onImmediate);
    }
    return this.flushed;
  }

  /** Flush what is queued now, synchronously (before closing the connection the items need). */
  flushNow(): void {
    const items = this.items;
    const release = this.release;
    this.items = [];
    this.flushed = undefined;
    this.release = undefined;
    if (items.length > 0) {
      try {
        this.flush(items);
      } catch {
        // `flush` handles its own errors; one that throws anyway must not keep the waiters from going on
      }
    }
    release?.();
  }

  private readonly onImmediate = (): void => {
    this.scheduled = false;
    this.flushNow();
  };
}
