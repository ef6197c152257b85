import type { DeliveryOutcome, Logger } from '@connector/core';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import type { ResolvedNatsOptions } from './options.js';
import { natsMatch } from './subjects.js';

/** True when replies are enabled and `reply` matches one of the allowed reply subjects. */
export function replyAllowed(
  o: Pick<ResolvedNatsOptions, 'reply' | 'replySubjects'>,
  reply: string,
): boolean {
  return o.reply && o.replySubjects.some((p) => natsMatch(p, reply));
}

/**
 * Request/reply: publish the first function's response body to the message's reply subject, with headers
 * `X-Function`, `X-Function-Status` and the function's `Content-Type`. Only when enabled and the subject is on
 * the allow-list: otherwise any publisher could make the connector publish anywhere.
 */
export function respond(
  nc: NatsConnection,
  o: Pick<ResolvedNatsOptions, 'reply' | 'replySubjects'>,
  reply: string,
  outcome: DeliveryOutcome,
  log: Logger,
): boolean {
  if (!o.reply) return false;
  if (!replyAllowed(o, reply)) {
    log.warn({ reply }, 'reply subject not in reply_subjects: no reply published');
    return false;
  }
  const result = outcome.results[0];
  if (!result) return false;
  const h = headers();
  h.set('X-Function', result.function);
  h.set('X-Function-Status', String(result.status));
  const ct = result.headers['content-type'];
  if (ct !== undefined && ct !== '') h.set('Content-Type', ct);
  try {
    nc.publish(reply, result.body, { headers: h });
    return true;
  } catch (err) {
    log.warn({ err, reply }, 'could not publish the reply');
    return false;
  }
}
