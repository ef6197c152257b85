import { isShutdownError } from '../errors.js';
import type { DeliveryOutcome } from '../source.js';

/**
 * What a source does with a message once its delivery ended: `ack` (delivered, dead-lettered or unrouted: tell the
 * broker it is done), `nack` (failed: let the broker redeliver it), `shutdown` (the connector stopped first: do
 * nothing, the broker redelivers it to the next consumer).
 */
export type AckDecision = 'ack' | 'nack' | 'shutdown';

/** The one rule from an outcome to an ack: ack iff `outcome.ack`. */
export function ackDecision(outcome: DeliveryOutcome): 'ack' | 'nack' {
  return outcome.ack ? 'ack' : 'nack';
}

/**
 * The one rule for a delivery that rejected: `shutdown` for ShutdownError (the connector stopped first), `nack` for
 * anything else (an unexpected error never acks a message); `onError` hears those other errors.
 */
export function rejectionDecision(err: unknown, onError?: (err: unknown) => void): 'shutdown' | 'nack' {
  if (isShutdownError(err)) return 'shutdown';
  onError?.(err);
  return 'nack';
}

/**
 * Wait for a delivery and decide: `ack` iff the outcome says so, `shutdown` when it rejected with ShutdownError,
 * `nack` for any other rejection (an unexpected error never acks a message). `onError` hears those rejections.
 * (A source whose hot path cannot afford the extra promise calls `ackDecision` / `rejectionDecision` in its own
 * `then`.)
 */
export function settleDelivery(
  delivery: Promise<DeliveryOutcome>,
  onError?: (err: unknown) => void,
): Promise<AckDecision> {
  return delivery.then(ackDecision, (err: unknown) => rejectionDecision(err, onError));
}
