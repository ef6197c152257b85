// The one file that relies on kafkajs internals. kafkajs 2.2.4 (its last release) schedules its request queue's
// throttle check with `setTimeout(fn, throttledUntil - Date.now())`, where `throttledUntil` is -1 until a broker
// throttles it: a delay of about minus the epoch in ms. Node treats it as 1 ms, and from Node 23 also prints
// "TimeoutNegativeWarning: -1796235631951 is a negative number" to stderr once per process: a kafka-connector on
// Node 24 (its Docker image) started with that line outside its JSON log. This replaces the method with one that
// schedules the same check without a negative delay (1 ms, what Node used) and is otherwise the same.
import { createRequire } from 'node:module';
import { SourceError } from '@connector/core';

/** kafkajs's wait before looking at pending requests again while some are queued (its CHECK_PENDING_REQUESTS_INTERVAL). */
const PENDING_CHECK_MS = 10;

/** The RequestQueue fields the replacement reads and writes. */
interface RequestQueue {
  throttledUntil: number;
  pending: unknown[];
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

/** kafkajs's RequestQueue class (CommonJS, no types: a deep path of the package, which has no `exports` map). */
function requestQueueClass(): { prototype: RequestQueue } {
  return createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js');
}

/**
 * Replace kafkajs's `RequestQueue.prototype.scheduleCheckPendingRequests` (idempotent). Throws a SourceError naming
 * what is missing when kafkajs no longer has the internals used, so an upgrade fails at start, not silently.
 */
export function fixRequestQueueTimer(queue: { prototype: RequestQueue } = requestQueueClass()): void {
  if (queue.prototype.scheduleCheckPendingRequests === schedule) return;
  for (const name of ['scheduleCheckPendingRequests', 'checkPendingRequests'] as const)
    if (typeof queue.prototype[name] !== 'function')
      throw new SourceError(
        `kafkajs no longer has RequestQueue.prototype.${name}: @connector/source-kafka is tested with kafkajs 2.2.x`,
      );
  queue.prototype.scheduleCheckPendingRequests = schedule;
}

/** kafkajs's method, with the delay never below 1 ms. */
function schedule(this: RequestQueue): void {
  if (this.throttleCheckTimeoutId) return; // one check is scheduled already; it schedules the next if needed
  const untilUnthrottled = this.throttledUntil - Date.now();
  const delay = untilUnthrottled > 0 ? untilUnthrottled : this.pending.length > 0 ? PENDING_CHECK_MS : 1;
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, delay);
}
