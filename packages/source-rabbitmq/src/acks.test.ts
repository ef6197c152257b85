import { describe, expect, it } from 'vitest';
import { AckPlan } from './acks.js';

describe('AckPlan: one cumulative ack for the settled prefix, single acks above an open tag', () => {
  it('acks of a turn that complete the prefix go as one ack with multiple, at the highest of them', () => {
    const p = new AckPlan();
    expect(p.plan([2, 1, 3])).toEqual({ upTo: 3, singles: [] });
    expect(p.plan([4])).toEqual({ upTo: 4, singles: [] });
  });

  it('a tag still open (in delivery or waiting to be requeued) keeps the acks above it single', () => {
    const p = new AckPlan();
    expect(p.plan([1, 3, 4])).toEqual({ upTo: 1, singles: [3, 4] });
    // 2 settles later: 3 and 4 were already acked alone, so the prefix ack targets 2 itself
    expect(p.plan([2, 6])).toEqual({ upTo: 2, singles: [6] });
    expect(p.plan([5])).toEqual({ upTo: 5, singles: [] }); // covers nothing acked before: 6 is above it
  });

  it('never aims a cumulative ack at a tag settled before (acked or nacked): the broker no longer knows it', () => {
    const p = new AckPlan();
    p.settle(1); // nacked
    expect(p.plan([2])).toEqual({ upTo: 2, singles: [] });
    p.settle(4); // nacked, above open 3
    expect(p.plan([3])).toEqual({ upTo: 3, singles: [] }); // not 4: that one was nacked
    expect(p.plan([5])).toEqual({ upTo: 5, singles: [] });
  });

  it('a turn with no ack in the prefix sends only singles', () => {
    const p = new AckPlan();
    expect(p.plan([2, 3])).toEqual({ upTo: undefined, singles: [2, 3] });
    expect(p.plan([1])).toEqual({ upTo: 1, singles: [] });
    expect(p.plan([4])).toEqual({ upTo: 4, singles: [] });
  });
});
