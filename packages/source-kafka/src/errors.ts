import {
  type BrokerError,
  type BrokerErrorRule,
  brokerError,
  errorMessage,
  type Logger,
} from '@connector/core';

/** A row of the Kafka error table; without `canRetry`, the error's own `retriable` flag decides. */
type KafkaErrorRule = Omit<BrokerErrorRule, 'canRetry'> & { readonly canRetry?: boolean };

/**
 * kafkajs errors by class name (`err.name`) or, for protocol errors, by the broker's error name (`err.type`, e.g.
 * `TOPIC_AUTHORIZATION_FAILED`). First matching row wins; anything else is `ERR_BROKER`, retryable.
 */
export const KAFKA_ERRORS = [
  // Credentials or permissions refused: the same ones will be refused again.
  {
    match: [
      'KafkaJSSASLAuthenticationError',
      'SASL_AUTHENTICATION_FAILED',
      'UNSUPPORTED_SASL_MECHANISM',
      'ILLEGAL_SASL_STATE',
      'TOPIC_AUTHORIZATION_FAILED',
      'GROUP_AUTHORIZATION_FAILED',
      'CLUSTER_AUTHORIZATION_FAILED',
      'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
      'DELEGATION_TOKEN_AUTHORIZATION_FAILED',
    ],
    code: 'ERR_BROKER_AUTH',
    canRetry: false,
  },
  // The client or the broker cannot do this at all (an old broker, a kafkajs bug): no retry helps.
  {
    match: [
      'KafkaJSServerDoesNotSupportApiKey',
      'KafkaJSNotImplemented',
      'KafkaJSUnsupportedMagicByteInMessageSet',
      'KafkaJSInvariantViolation',
      'KafkaJSPartialMessageError',
    ],
    code: 'ERR_BROKER',
    canRetry: false,
  },
  // kafkajs gives up on these at once, but the condition passes (a coordinator moved, a lock or request timed out).
  {
    match: ['KafkaJSGroupCoordinatorNotFound', 'KafkaJSTimeout', 'KafkaJSLockTimeout'],
    code: 'ERR_BROKER',
    canRetry: true,
  },
  // Connection and protocol errors: retryable per the error's `retriable` flag (kafkajs sets it per broker error).
  {
    match: [
      'KafkaJSConnectionError',
      'KafkaJSConnectionClosedError',
      'KafkaJSRequestTimeoutError',
      'KafkaJSNoBrokerAvailableError',
      'KafkaJSBrokerNotFound',
      'KafkaJSMetadataNotLoaded',
      'KafkaJSTopicMetadataNotLoaded',
      'KafkaJSStaleTopicMetadataAssignment',
      'KafkaJSNumberOfRetriesExceeded',
      'KafkaJSProtocolError',
      'KafkaJSOffsetOutOfRange',
      'KafkaJSMemberIdRequired',
      'KafkaJSCreateTopicError',
      'KafkaJSNonRetriableError',
      'KafkaJSError',
    ],
    code: 'ERR_BROKER',
  },
] as const satisfies readonly KafkaErrorRule[];

/** The table as `brokerError` takes it, for errors whose `retriable` flag is true, and for those where it is false. */
const BY_FLAG = {
  retriable: KAFKA_ERRORS,
  final: KAFKA_ERRORS.map((r) => ('canRetry' in r ? r : { ...r, canRetry: false })),
} as const;

/** kafkajs wrappers that only say how kafkajs gave up; the error they carry (`cause`) says what went wrong. */
const WRAPPERS = new Set(['KafkaJSNumberOfRetriesExceeded', 'KafkaJSNonRetriableError']);

interface KafkaJSErrorShape {
  name?: unknown;
  type?: unknown;
  retriable?: unknown;
  cause?: unknown;
}

/**
 * Normalise a kafkajs error into a core `BrokerError` (`ERR_BROKER` / `ERR_BROKER_AUTH`, `canRetry`) through
 * `KAFKA_ERRORS`. Wrappers (retries exhausted, non-retriable) are looked through to the error they carry, whose
 * `retriable` flag is the one kafkajs itself restarts a consumer on. `what` says what was being done.
 */
export function kafkaError(err: unknown, what: string): BrokerError {
  let e = err as KafkaJSErrorShape | null | undefined;
  while (
    typeof e?.name === 'string' &&
    WRAPPERS.has(e.name) &&
    typeof e.cause === 'object' &&
    e.cause !== null
  )
    e = e.cause as KafkaJSErrorShape;
  const table = e?.retriable === false ? BY_FLAG.final : BY_FLAG.retriable;
  // Protocol errors carry a numeric `code` and the broker's error name in `type`: let the table see the name, through
  // a view of the error (its message, stack and cause read through to it).
  const subject =
    typeof e?.type === 'string' ? Object.create(e, { code: { value: e.type, enumerable: true } }) : e;
  return brokerError(subject, what, table);
}

/**
 * Log a (normalised) broker error as one line: message, `code`, the client's own code and `canRetry`; its stack only
 * on a second line at debug level.
 */
export function logBrokerError(
  logger: Logger,
  level: 'warn' | 'error',
  err: unknown,
  msg: string,
  fields: Record<string, unknown> = {},
): void {
  const e = err as Partial<BrokerError> | undefined;
  logger[level](
    {
      ...fields,
      err: errorMessage(err),
      ...(typeof e?.code === 'string' ? { code: e.code } : {}),
      ...(typeof e?.brokerCode === 'string' ? { brokerCode: e.brokerCode } : {}),
      ...(typeof e?.canRetry === 'boolean' ? { canRetry: e.canRetry } : {}),
    },
    msg,
  );
  const origin = (err as { cause?: unknown } | undefined)?.cause ?? err;
  if (origin instanceof Error && origin.stack) logger.debug({ stack: origin.stack }, `${msg} (stack)`);
}
