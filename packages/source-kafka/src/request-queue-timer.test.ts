import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fixRequestQueueTimer } from './request-queue-timer.js';

/** A stand-in with the RequestQueue fields the replacement uses. */
function fakeQueue() {
  class Queue {
    throttledUntil = -1;
    pending: unknown[] = [];
    throttleCheckTimeoutId: NodeJS.Timeout | null = null;
    checks = 0;
    checkPendingRequests() {
      this.checks++;
    }
    scheduleCheckPendingRequests() {
      throw new Error('kafkajs original');
    }
  }
  return Queue;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('fixRequestQueueTimer', () => {
  it("schedules kafkajs's throttle check with the same delays, never a negative one", () => {
    vi.useFakeTimers();
    const spy = vi.spyOn(globalThis, 'setTimeout');
    const Queue = fakeQueue();
    fixRequestQueueTimer(Queue);
    const q = new Queue();
    q.scheduleCheckPendingRequests(); // never throttled, nothing pending: kafkajs's delay was -Date.now()-1
    expect(spy.mock.lastCall?.[1]).toBe(1);
    q.scheduleCheckPendingRequests(); // one check at a time
    expect(spy).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1);
    expect(q.checks).toBe(1);
    expect(q.throttleCheckTimeoutId).toBeNull();
    q.pending.push({});
    q.scheduleCheckPendingRequests(); // requests waiting, not throttled: kafkajs's 10 ms
    expect(spy.mock.lastCall?.[1]).toBe(10);
    vi.advanceTimersByTime(10);
    q.throttledUntil = Date.now() + 250;
    q.scheduleCheckPendingRequests(); // throttled by a broker: until the throttle ends
    expect(spy.mock.lastCall?.[1]).toBe(250);
  });

  it('is installed on the kafkajs class itself, once', () => {
    const RequestQueue = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js');
    fixRequestQueueTimer();
    const fixed = RequestQueue.prototype.scheduleCheckPendingRequests;
    expect(fixed.toString()).not.toContain('scheduleAt');
    fixRequestQueueTimer();
    expect(RequestQueue.prototype.scheduleCheckPendingRequests).toBe(fixed);
  });

  it('fails naming the internal when a kafkajs upgrade removed it', () => {
    const Queue = fakeQueue() as unknown as { prototype: Record<string, unknown> };
    Queue.prototype['checkPendingRequests'] = undefined;
    expect(() => fixRequestQueueTimer(Queue as never)).toThrow(
      'kafkajs no longer has RequestQueue.prototype.checkPendingRequests: @connector/source-kafka is tested with kafkajs 2.2.x',
    );
  });
});
