/**
 * What to send for the acks of one event-loop turn on one channel. Delivery tags of a channel count up from 1, one per
 * message; an ack with `multiple` settles every outstanding tag up to its own, and its own tag must still be
 * outstanding (RabbitMQ closes the channel with PRECONDITION_FAILED "unknown delivery tag" otherwise). So: one
 * cumulative ack at the highest tag of this turn below which every tag is settled (acked now or before, or nacked),
 * and a single ack for each tag of this turn above a tag still open (in delivery, or waiting out a requeue back-off).
 */
export class AckPlan {
  /** Lowest tag not settled yet. */
  private low = 1;
  /** Settled tags above `low`. */
  private readonly settled = new Set<number>();

  /** `tag` was settled on its own (nacked, sent at once). */
  settle(tag: number): void {
    this.add(tag);
  }

  /** The tags acked in one turn → `upTo`: the tag of one cumulative ack (or undefined), `singles`: tags acked alone. */
  plan(tags: readonly number[]): { upTo: number | undefined; singles: number[] } {
    for (const t of tags) this.add(t);
    const prefixEnd = this.low - 1;
    let upTo: number | undefined;
    const singles: number[] = [];
    for (const t of tags) {
      if (t > prefixEnd) singles.push(t);
      else if (upTo === undefined || t > upTo) upTo = t;
    }
    return { upTo, singles };
  }

  private add(tag: number): void {
    if (tag < this.low) return;
    this.settled.add(tag);
    while (this.settled.delete(this.low)) this.low++;
  }
}
