/** Every error code @connector raises; match on `code`, never on `instanceof` across package copies. */
export type ErrorCode =
  | 'ERR_CONFIG'
  | 'ERR_GATEWAY_UNREACHABLE'
  | 'ERR_GATEWAY_STATUS'
  | 'ERR_TIMEOUT'
  | 'ERR_FUNCTION_NOT_FOUND'
  | 'ERR_INVOKE_STATUS'
  | 'ERR_NETWORK'
  | 'ERR_SHUTDOWN'
  | 'ERR_ABORTED'
  | 'ERR_SOURCE';

/** Base class of every error @connector throws or reports. */
export class ConnectorError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
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
}

/** The gateway could not be reached or answered a `/system` call with an unexpected status. */
export class GatewayError extends ConnectorError {
  /** HTTP status when the gateway answered, otherwise undefined. */
  readonly status: number | undefined;
  constructor(
    code: 'ERR_GATEWAY_UNREACHABLE' | 'ERR_GATEWAY_STATUS',
    message: string,
    status?: number,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.status = status;
  }
}

/** A function invocation that did not succeed (network error, timeout or a non-2xx status). */
export class InvokeError extends ConnectorError {
  /** HTTP status when one was received. */
  readonly status: number | undefined;
  constructor(
    code: 'ERR_TIMEOUT' | 'ERR_FUNCTION_NOT_FOUND' | 'ERR_INVOKE_STATUS' | 'ERR_NETWORK' | 'ERR_ABORTED',
    message: string,
    status?: number,
    options?: { cause?: unknown },
  ) {
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
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SOURCE', message, options);
  }
}

/** True when `err` is a ShutdownError (from any copy of @connector/core). */
export function isShutdownError(err: unknown): err is ShutdownError {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ERR_SHUTDOWN';
}
