import type { AckDecision } from '@connector/core';

/**
 * FIFO message groups: a group's messages are delivered one after another, in receive order. Once one is not acked
 * (`nack`), the rest of its group is not delivered but held back (made visible again by the caller): SQS keeps the
 * group locked while the failed message is invisible and then hands the group over again in order, so nothing is
 * delivered ahead of a message that failed. After a `shutdown` the rest is neither delivered nor released here (it
 * is released at stop).
 */
export class GroupChains {
  // The last message of each group key: what the next one waits for.
  private readonly last = new Map<string, Promise<AckDecision>>();

  /** Groups with a message in flight. */
  get size(): number {
    return this.last.size;
  }

  /**
   * Chain one message onto its group `key`: `deliver` runs once the group's previous message was acked (at once when
   * there is none); after a `nack` or `shutdown` before it, `holdBack(decision)` runs instead, and the chain goes
   * on with that decision, so the whole rest of the group is held back.
   */
  run(
    key: string,
    deliver: () => Promise<AckDecision>,
    holdBack: (before: 'nack' | 'shutdown') => Promise<unknown>,
  ): Promise<AckDecision> {
    const prev = this.last.get(key);
    const next: Promise<AckDecision> = prev
      ? prev.then(async (before) => {
          if (before === 'ack') return deliver();
          await holdBack(before);
          return before;
        })
      : deliver();
    this.last.set(key, next);
    const forget = () => {
      if (this.last.get(key) === next) this.last.delete(key);
    };
    next.then(forget, forget);
    return next;
  }
}
