import { type BrokerError, type BrokerErrorRule, brokerError } from '@connector/core';

/**
 * How the AWS SDK's SQS errors (their `name`, or a Node network error's `code`) map onto @connector's codes; the
 * first matching row wins, anything else is `ERR_BROKER`, retryable. Names cover both the JSON protocol
 * (`AccessDeniedException`) and the Query protocol (`AccessDenied`) spellings.
 */
export const SQS_ERRORS = [
  // Credentials or permissions: trying again with the same ones cannot help.
  {
    match: [
      'AccessDenied',
      'AccessDeniedException',
      'InvalidClientTokenId',
      'UnrecognizedClientException',
      'SignatureDoesNotMatch',
      'IncompleteSignature',
      'MissingAuthenticationToken',
      'MissingAuthenticationTokenException',
      'InvalidSecurity',
      'InvalidSecurityToken',
      'ExpiredToken',
      'ExpiredTokenException',
      'NotAuthorized',
      'KmsAccessDenied',
      'KmsOptInRequired',
    ],
    code: 'ERR_BROKER_AUTH',
  },
  // The queue is not there (deleted, misspelt, another region or account).
  {
    match: ['QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue'],
    code: 'ERR_BROKER',
    canRetry: false,
  },
  // A request SQS refuses as it is (a setting the queue does not accept, a KMS key that cannot be used).
  {
    match: [
      'InvalidParameterValue',
      'InvalidParameterValueException',
      'InvalidAddress',
      'InvalidAttributeName',
      'InvalidAttributeValue',
      'UnsupportedOperation',
      'ValidationException',
      'KmsDisabled',
      'KmsInvalidKeyUsage',
      'KmsInvalidState',
      'KmsNotFound',
    ],
    code: 'ERR_BROKER',
    canRetry: false,
  },
  // Throttling, server-side trouble and the network: worth another try after a back-off.
  {
    match: [
      'ThrottlingException',
      'RequestThrottled',
      'KmsThrottled',
      'OverLimit',
      'ServiceUnavailable',
      'InternalError',
      'InternalFailure',
      'RequestTimeout',
      'TimeoutError',
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      'EPIPE',
      'ENOTFOUND',
      'EAI_AGAIN',
      'EHOSTUNREACH',
      'ENETUNREACH',
    ],
    code: 'ERR_BROKER',
    canRetry: true,
  },
] as const satisfies readonly BrokerErrorRule[];

/** An AWS SDK error normalised through `SQS_ERRORS`; `what` names the call, e.g. `ReceiveMessage on orders`. */
export function sqsError(err: unknown, what: string): BrokerError {
  return brokerError(err, what, SQS_ERRORS);
}
