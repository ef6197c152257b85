import { type BrokerError, type BrokerErrorRule, brokerError } from '@connector/core';

/**
 * NATS.js v3 error names (and socket codes) → core error codes. First matching row wins; anything else is
 * `ERR_BROKER`, retryable.
 */
export const NATS_ERRORS = [
  {
    match: ['AuthorizationError', 'UserAuthenticationExpiredError', 'PermissionViolationError'],
    code: 'ERR_BROKER_AUTH',
  },
  {
    match: ['InvalidSubjectError', 'InvalidArgumentError', 'InvalidNameError', 'InvalidOperationError'],
    code: 'ERR_BROKER',
    canRetry: false,
  },
  { match: ['JetStreamNotEnabled'], code: 'ERR_BROKER', canRetry: false },
  // The server verifies client certificates (its INFO says `tls_verify`) and none is configured (connection.ts).
  { match: ['TLS_CLIENT_CERT_REQUIRED'], code: 'ERR_BROKER_AUTH', canRetry: false },
  {
    match: [
      'ConnectionError',
      'ClosedConnectionError',
      'DrainingConnectionError',
      'ProtocolError',
      'TimeoutError',
      'RequestError',
      'NoResponders',
      'JetStreamError',
      'JetStreamStatusError',
      'JetStreamApiError',
      'ConsumerNotFoundError',
      'StreamNotFoundError',
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      'EHOSTUNREACH',
      'ENOTFOUND',
    ],
    code: 'ERR_BROKER',
    canRetry: true,
  },
] as const satisfies readonly BrokerErrorRule[];

/** Normalise a NATS client error through `NATS_ERRORS`; `what` says what was being done. */
export function natsError(err: unknown, what: string): BrokerError {
  return brokerError(err, what, NATS_ERRORS);
}
