import type { Context } from '@opentelemetry/api';
import type { ConnectorError } from './errors.js';
import type { MessageHeaders } from './headers.js';
import type { SourceMessage } from './source.js';

/** Minimal structured logger; a pino logger satisfies it. */
export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  /** A logger that adds `bindings` to every line. */
  child(bindings: Record<string, unknown>): Logger;
}

/** A log method: `(obj, msg?)` or `(msg)`. */
export type LogFn = {
  (obj: object, msg?: string): void;
  (msg: string): void;
};

/** A function found on the gateway: its address and the annotations that route to it. */
export interface FunctionInfo {
  /** Function name without namespace. */
  readonly name: string;
  /** Namespace, or '' when the provider has no namespaces. */
  readonly namespace: string;
  /** How it is invoked: `name.namespace`, or `name` when namespace is ''. */
  readonly address: string;
  /** Topics parsed from the `topic` annotation (split on the delimiter, trimmed, empties dropped). */
  readonly topics: readonly string[];
  /** Every annotation of the function (`schedule` for cron, ...). */
  readonly annotations: Readonly<Record<string, string>>;
}

/** The final (or per-attempt) result of invoking one function. */
export interface InvokeResult {
  /** Topic the message came on ('' when invoked by name). */
  readonly topic: string;
  /** Function address `name.namespace`. */
  readonly function: string;
  /** HTTP status from the gateway; 0 when no response was received. */
  readonly status: number;
  /** Response headers, lower-cased names. */
  readonly headers: Readonly<Record<string, string>>;
  /** Response body (empty for async invocations). */
  readonly body: Uint8Array;
  /** Wall time of this attempt in milliseconds. */
  readonly duration: number;
  /** Set when the invocation did not succeed (non-2xx, network error, timeout). */
  readonly error?: ConnectorError;
  /** The gateway's `X-Call-Id` (always present for async invocations). */
  readonly callId?: string;
  /** True when invoked through `/async-function`. */
  readonly async: boolean;
  /** 1 for the first attempt, 2 for the first retry, ... */
  readonly attempt: number;
  /** True when no further attempt will be made for this message and function. */
  readonly final: boolean;
}

/** Receives every invocation result (the Go SDK's ResponseSubscriber). */
export interface ResponseSubscriber {
  /** Called once per attempt; must not throw (a throwing subscriber is logged and ignored). */
  response(result: InvokeResult): void;
}

/** Per-call options of `invoke` / `invokeFunction`. */
export interface InvokeOptions {
  /** The message's headers, raw: the header policy decides what is sent (X-Topic/X-Connector always win). */
  headers?: MessageHeaders;
  /** Overrides the configured content type. */
  contentType?: string;
  /** Overrides async invocation for this call. */
  async?: boolean;
  /** Overrides the configured async callback URL (sent as X-Callback-Url). */
  callbackUrl?: string;
  /** Aborts the request. */
  signal?: AbortSignal;
  /** Attempt number reported to subscribers (the delivery engine sets it). */
  attempt?: number;
  /** Deadline of this invocation in ms, overriding `upstreamTimeout` (a function's `connector.dev/timeout`). */
  timeout?: number;
  /** Statuses a retry can help with, overriding the invoker's (the engine passes its retry policy's). */
  retryOn?: ReadonlySet<number>;
  /** The message being delivered (the engine passes it): its broker id and timestamp make the CloudEvent's. */
  message?: Pick<SourceMessage, 'id' | 'timestamp'>;
  /** Name of the source the message came from (the engine passes it), for the CloudEvent's source and type. */
  source?: string;
  /** OpenTelemetry context to make this attempt's client span a child of (the engine passes the message's consumer
   * span); the request then carries the attempt's `traceparent` instead of the message's. */
  traceContext?: Context;
}

/** One message of a batch invocation (`Invoker.invokeBatch`). */
export interface BatchItem {
  /** Topic the message came on. */
  readonly topic: string;
  /** Message bytes: sent as text when valid UTF-8, else base64. */
  readonly body: Uint8Array;
  /** Broker key, when the message has one. */
  readonly key?: string | undefined;
  /** The message's headers, raw: the header policy decides what goes into the item. */
  readonly headers?: MessageHeaders | undefined;
  /** The message's content type. */
  readonly contentType?: string | undefined;
  /** This message's attempt number (its result reports it). */
  readonly attempt?: number | undefined;
}
