import type { DeliveryOutcome } from '@connector/core';
import type { ConsumeMessage, Options } from 'amqplib';
import type { Session } from './consumer.js';
import { amqpMatch } from './routing.js';

/** The message's reply-to queue when replies are enabled and it matches one of the `allow` patterns. */
export function replyTarget(msg: ConsumeMessage, allow: readonly string[]): string | undefined {
  const to = msg.properties.replyTo as unknown;
  if (typeof to !== 'string' || to === '' || allow.length === 0) return undefined;
  return allow.some((pattern) => amqpMatch(pattern, to)) ? to : undefined;
}

/**
 * Publish the first function's response to `to` through the default exchange, with the request's correlation id,
 * the function's content type and headers `X-Function` / `X-Function-Status`; resolves on the broker's confirm.
 */
export async function sendReply(
  session: Session,
  to: string,
  msg: ConsumeMessage,
  outcome: DeliveryOutcome,
): Promise<boolean> {
  const result = outcome.results[0];
  if (!result) return false;
  const options: Options.Publish = {
    headers: { 'X-Function': result.function, 'X-Function-Status': result.status },
  };
  const corr = msg.properties.correlationId as unknown;
  if (typeof corr === 'string' && corr !== '') options.correlationId = corr;
  const ct = result.headers['content-type'];
  if (ct !== undefined && ct !== '') options.contentType = ct;
  await session.publishToQueue(to, Buffer.from(result.body), options);
  return true;
}
