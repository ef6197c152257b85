import { type BrokerError, type BrokerErrorRule, brokerError } from '@connector/core';

/** AMQP 0-9-1 reply codes by number (amqplib puts the number on `err.code` of channel and connection errors). */
const REPLY_CODES: Readonly<Record<number, string>> = {
  311: 'CONTENT_TOO_LARGE',
  312: 'NO_ROUTE',
  313: 'NO_CONSUMERS',
  320: 'CONNECTION_FORCED',
  402: 'INVALID_PATH',
  403: 'ACCESS_REFUSED',
  404: 'NOT_FOUND',
  405: 'RESOURCE_LOCKED',
  406: 'PRECONDITION_FAILED',
  501: 'FRAME_ERROR',
  502: 'SYNTAX_ERROR',
  503: 'COMMAND_INVALID',
  504: 'CHANNEL_ERROR',
  505: 'UNEXPECTED_FRAME',
  506: 'RESOURCE_ERROR',
  530: 'NOT_ALLOWED',
  540: 'NOT_IMPLEMENTED',
  541: 'INTERNAL_ERROR',
};

/**
 * How amqplib's and the socket's errors map onto @connector's codes (first matching row wins; anything else is
 * `ERR_BROKER`, retryable). Names are AMQP reply-code names (`ACCESS_REFUSED` = 403, ...) or Node socket codes.
 */
export const AMQP_ERRORS = [
  // wrong credentials, no permission on the vhost, exchange or queue: trying again cannot help
  { match: ['ACCESS_REFUSED', 'INVALID_PATH'], code: 'ERR_BROKER_AUTH', canRetry: false },
  // the queue exists with other arguments (x-queue-type, x-dead-letter-exchange, ...), or an exclusive queue is
  // held by another connection: a configuration conflict, not a blip
  { match: ['PRECONDITION_FAILED', 'RESOURCE_LOCKED', 'NOT_ALLOWED'], code: 'ERR_BROKER', canRetry: false },
  // certificate problems
  {
    match: [
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'SELF_SIGNED_CERT_IN_CHAIN',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'CERT_HAS_EXPIRED',
      'ERR_TLS_CERT_ALTNAME_INVALID',
    ],
    code: 'ERR_BROKER_AUTH',
    canRetry: false,
  },
  // the broker or the network went away: reconnecting helps
  {
    match: [
      'CONNECTION_FORCED',
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      'EPIPE',
      'EHOSTUNREACH',
      'ENOTFOUND',
      'EAI_AGAIN',
      'NOT_FOUND',
      'INTERNAL_ERROR',
      'RESOURCE_ERROR',
      'CHANNEL_ERROR',
      'IllegalOperationError',
    ],
    code: 'ERR_BROKER',
    canRetry: true,
  },
] as const satisfies readonly BrokerErrorRule[];

/** The AMQP reply-code name of an amqplib error, when it carries one (numeric `code`, or a handshake refusal). */
export function replyCodeName(err: unknown): string | undefined {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  if (typeof e?.code === 'number') return REPLY_CODES[e.code];
  // amqplib reports a refused handshake (bad credentials, unknown vhost) only in its message, in one fixed format:
  // "Handshake terminated by server: 403 (ACCESS-REFUSED) with message ..."
  const prefix = 'Handshake terminated by server: ';
  if (typeof e?.message === 'string' && e.message.startsWith(prefix))
    return REPLY_CODES[Number.parseInt(e.message.slice(prefix.length), 10)];
  return undefined;
}

/** Normalise an amqplib / socket error through `AMQP_ERRORS`; `what` says what was being done. */
export function amqpError(err: unknown, what: string): BrokerError {
  const name = replyCodeName(err);
  if (name === undefined || typeof err !== 'object' || err === null)
    return brokerError(err, what, AMQP_ERRORS);
  const e = err as { message?: unknown };
  const normalised = { code: name, message: typeof e.message === 'string' ? e.message : String(err) };
  const out = brokerError(normalised, what, AMQP_ERRORS);
  // keep the client's original error as the cause
  Object.defineProperty(out, 'cause', { value: err, enumerable: false, configurable: true, writable: true });
  return out;
}
