/**
 * Acks, naks and terms settled in one turn of the event loop, sent together. nats.js writes its outbound buffer a
 * microtask after the first command; deliveries settle one per HTTP response, each in its own I/O callback, so
 * acked one by one every ack was a socket write of its own (and a wake-up of the server): 2.3 writes a message
 * against 1.1 for MQTT, whose PUBACKs leave together. `send` runs `reply` in the next check phase (setImmediate)
 * with every other reply of this turn; it resolves once sent, so a source that awaits its deliveries (stop)
 * closes the connection only after them.
 */
export class Acks {
  private pending: (() => void)[] = [];
  private sent: Promise<void> | undefined;
  private release: (() => void) | undefined;

  /** Queue `reply` (an ack, nak or term call that handles its own errors) for the next flush; resolves when it ran. */
  send(reply: () => void): Promise<void> {
    this.pending.push(reply);
    if (this.sent === undefined) {
      this.sent = new Promise((resolve) => {
        this.release = resolve;
      });
      setImmediate(this.flush);
    }
    return this.sent;
  }

  private readonly flush = (): void => {
    const replies = this.pending;
    const release = this.release;
    this.pending = [];
    this.sent = undefined;
    this.release = undefined;
    for (const reply of replies) {
      try {
        reply();
      } catch {
        // `reply` handles its own errors (jetstream.ts records them in health); one that throws anyway must not keep
        // the rest from being sent or the waiters from going on: its message is redelivered after ack_wait.
      }
    }
    release?.();
  };
}
