/**
 * Every error code @connector raises, with whether trying the same thing again can help. One table: an error's
 * `canRetry` comes from here unless the place that makes the error knows better (an HTTP status, say).
 */
export const ERROR_CODES = {
  /** An invalid setting: fix the configuration. */
  ERR_CONFIG: { canRetry: false },
  /** The gateway could not be reached for a `/system` call. */
  ERR_GATEWAY_UNREACHABLE: { canRetry: true },
  /** The gateway answered a `/system` call with an unexpected status or body. */
  ERR_GATEWAY_STATUS: { canRetry: true },
  /** A response (function or `/system`) was larger than allowed; it was cut off. */
  ERR_RESPONSE_TOO_LARGE: { canRetry: false },
  /** The request did not finish within its deadline. */
  ERR_TIMEOUT: { canRetry: true },
  /** The function does not exist (404), or is outside the configured namespace. */
  ERR_FUNCTION_NOT_FOUND: { canRetry: false },
  /** The function answered a status that is not a success (retryable per the configured status codes). */
  ERR_INVOKE_STATUS: { canRetry: false },
  /** Connection refused, reset or closed before a response. */
  ERR_NETWORK: { canRetry: true },
  /** The request cannot be sent as it is (HTTP refuses it): no retry can fix it. */
  ERR_INVALID_REQUEST: { canRetry: false },
  /** The function asked for the message to be dead-lettered (`X-Connector-Outcome: dead-letter`). */
  ERR_FUNCTION_REJECTED: { canRetry: false },
  /** The message was older than the function's `connector.dev/max-age`: dead-lettered without an invocation. */
  ERR_MESSAGE_EXPIRED: { canRetry: false },
  /** The message was larger than `max_message_bytes`: dead-lettered (without its body) instead of invoked. */
  ERR_MESSAGE_TOO_LARGE: { canRetry: false },
  /** A batch item the function listed in `batchItemFailures` (or every item of a batch whose 2xx answer could not
   * be read): retried with a later batch, then dead-lettered or redelivered per the function's policy. */
  ERR_BATCH_ITEM_FAILED: { canRetry: true },
  /** A batch item after a failed item of the same ordering key: whatever the function did with it, it goes again
   * behind that item (without spending an attempt), so no message of a key succeeds before an earlier one. */
  ERR_BATCH_ITEM_HELD: { canRetry: true },
  /** The connector is stopping: the message was not settled (do not ack it). */
  ERR_SHUTDOWN: { canRetry: false },
  /** The request was aborted (hard stop). */
  ERR_ABORTED: { canRetry: false },
  /** A source failed in a way it cannot recover from by itself. */
  ERR_SOURCE: { canRetry: true },
  /** A broker operation failed (normalised from the broker client's error). */
  ERR_BROKER: { canRetry: true },
  /** The broker refused the credentials or the permission. */
  ERR_BROKER_AUTH: { canRetry: false },
} as const satisfies Record<string, { canRetry: boolean }>;

/** Every error code @connector raises; match on `code`, never on `instanceof` across package copies. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Options every connector error takes. */
export interface ConnectorErrorOptions {
  /** The underlying error. */
  cause?: unknown;
  /** Overrides the table's `canRetry` for this code. */
  canRetry?: boolean;
}

/** Base class of every error @connector throws or reports. */
export class ConnectorError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** Whether the same operation may succeed when tried again. */
  readonly canRetry: boolean;
  constructor(code: ErrorCode, message: string, options?: ConnectorErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.canRetry = options?.canRetry ?? ERROR_CODES[code].canRetry;
    this.name = new.target.name;
  }
}

/** An invalid setting; its message is one line naming the setting, the value and what was expected. */
export class ConfigError extends ConnectorError {
  /** The env variable or option name at fault. */
  readonly setting: string;
  constructor(setting: string, message: string) {
    super('ERR_CONFIG', message);
    this.setting = setting;
  }

  /** `invalid <name>=<value>: expected <expected>` — the one format of an invalid setting. */
  static invalid(name: string, value: unknown, expected: string): ConfigError {
    const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
    return new ConfigError(name, `invalid ${name}=${shown}: expected ${expected}`);
  }

  /** `missing <name>: expected <expected>` — a required setting that was not given. */
  static missing(name: string, expected: string): ConfigError {
    return new ConfigError(name, `missing ${name}: expected ${expected}`);
  }
}

/** The gateway could not be reached or answered a `/system` call with an unexpected status. */
export class GatewayError extends ConnectorError {
  /** HTTP status when the gateway answered, otherwise undefined. */
  readonly status: number | undefined;
  constructor(
    code: 'ERR_GATEWAY_UNREACHABLE' | 'ERR_GATEWAY_STATUS' | 'ERR_TIMEOUT' | 'ERR_RESPONSE_TOO_LARGE',
    message: string,
    status?: number,
    options?: ConnectorErrorOptions,
  ) {
    super(code, message, options);
    this.status = status;
  }
}

/** Codes an invocation can fail with. */
export type InvokeErrorCode =
  | 'ERR_TIMEOUT'
  | 'ERR_FUNCTION_NOT_FOUND'
  | 'ERR_INVOKE_STATUS'
  | 'ERR_NETWORK'
  | 'ERR_ABORTED'
  | 'ERR_INVALID_REQUEST'
  | 'ERR_RESPONSE_TOO_LARGE'
  | 'ERR_FUNCTION_REJECTED'
  | 'ERR_MESSAGE_EXPIRED'
  | 'ERR_MESSAGE_TOO_LARGE'
  | 'ERR_BATCH_ITEM_FAILED'
  | 'ERR_BATCH_ITEM_HELD';

/** A function invocation that did not succeed (network error, timeout or a non-2xx status). */
export class InvokeError extends ConnectorError {
  /** HTTP status when one was received. */
  readonly status: number | undefined;
  constructor(code: InvokeErrorCode, message: string, status?: number, options?: ConnectorErrorOptions) {
    super(code, message, options);
    this.status = status;
  }
}

/** `deliver()` was cut short because the connector is stopping: the source must NOT ack this message. */
export class ShutdownError extends ConnectorError {
  constructor(message = 'connector is shutting down; message not settled') {
    super('ERR_SHUTDOWN', message);
  }
}

/** A source failed in a way it cannot recover from by itself; the connector restarts it with backoff. */
export class SourceError extends ConnectorError {
  constructor(message: string, options?: ConnectorErrorOptions) {
    super('ERR_SOURCE', message, options);
  }
}

/** A broker client's error, normalised (see `brokerError`). */
export class BrokerError extends ConnectorError {
  /** The broker client's own code or name, as it gave it. */
  readonly brokerCode: string | undefined;
  constructor(
    code: 'ERR_BROKER' | 'ERR_BROKER_AUTH',
    message: string,
    brokerCode?: string,
    options?: ConnectorErrorOptions,
  ) {
    super(code, message, options);
    this.brokerCode = brokerCode;
  }
}

/** One row of a broker's error table: which client codes/names it covers and what they mean. */
export interface BrokerErrorRule {
  /** Client error codes or names (`err.code`, `err.name`) this row covers. */
  readonly match: readonly string[];
  /** The normalised code. */
  readonly code: 'ERR_BROKER' | 'ERR_BROKER_AUTH';
  /** Whether trying again can help (default from ERROR_CODES). */
  readonly canRetry?: boolean;
}

/**
 * Normalise a broker client's error through a table (first matching row wins; unknown errors are `ERR_BROKER`,
 * retryable). `what` says what was being done, e.g. `ReceiveMessage on orders`.
 */
export function brokerError(err: unknown, what: string, table: readonly BrokerErrorRule[]): BrokerError {
  if (err instanceof BrokerError) return err;
  const e = err as { code?: unknown; name?: unknown; message?: unknown } | undefined;
  const keys = [e?.code, e?.name].filter((k): k is string => typeof k === 'string' && k !== '');
  const row = table.find((r) => r.match.some((m) => keys.includes(m)));
  const reason = typeof e?.message === 'string' && e.message !== '' ? e.message : String(err);
  return new BrokerError(row?.code ?? 'ERR_BROKER', `${what}: ${reason}`, keys[0], {
    cause: err,
    ...(row?.canRetry === undefined ? {} : { canRetry: row.canRetry }),
  });
}

/** True when `err` is a ShutdownError (from any copy of @connector/core). */
export function isShutdownError(err: unknown): err is ShutdownError {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ERR_SHUTDOWN';
}
