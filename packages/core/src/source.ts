import type { BacklogSample } from './backlog.js';
import type { MessageHeaders } from './headers.js';
import type { FunctionInfo, InvokeResult, Logger } from './types.js';

/** A message as a source hands it to the connector. */
export interface SourceMessage {
  /** Topic used to find subscribed functions (MQTT topic, Kafka topic, SQS queue name, ...). */
  readonly topic: string;
  /** Message bytes, sent to the function as they are. */
  readonly body: Uint8Array;
  /** The broker's headers, raw (X-Kafka-*, MQTT user properties, traceparent, ...): core's header policy decides
   * what reaches the function and encodes what HTTP cannot carry. */
  readonly headers?: MessageHeaders;
  /** Messages with the same ordering key are delivered one after another, in `deliver` call order. */
  readonly orderingKey?: string;
  /** Broker key (Kafka key, ...), for logs and dead letters. */
  readonly key?: string;
  /** A unique id of the message (Kafka topic/partition/offset, SQS MessageId, JetStream stream:sequence; MQTT makes
   * one, its packet ids being reused), for logs, dead letters and CloudEvents' `ce-id`. */
  readonly id?: string;
  /** The broker's partition of the message (Kafka partition), for traces. */
  readonly partition?: string;
  /** The message's offset in its partition (Kafka offset), for traces. */
  readonly offset?: string;
  /** Invoke exactly these functions (`name` or `name.namespace`) instead of matching the topic. */
  readonly functions?: readonly string[];
  /** When the broker took the message (ms since epoch), for a function's `connector.dev/max-age`; without it the
   * age counts from the first invocation attempt. */
  readonly timestamp?: number;
  /** Content type for this message, overriding the configured one. */
  readonly contentType?: string;
}

/** How a delivery ended. */
export type DeliveryStatus = 'delivered' | 'failed' | 'dead-lettered' | 'unrouted';

/** The settled result of `ctx.deliver(message)`. */
export interface DeliveryOutcome {
  /** `delivered`: every matched function succeeded; `dead-lettered`: at least one failed and was dead-lettered;
   * `failed`: at least one failed and `onFailure` is `redeliver`; `unrouted`: no function matched. */
  readonly status: DeliveryStatus;
  /** Whether the source should now acknowledge the message to its broker (false only for `failed`). */
  readonly ack: boolean;
  /** The final result of each matched function, in match order. */
  readonly results: readonly InvokeResult[];
}

/** What a source reports about itself for /readyz and metrics. */
export interface SourceHealth {
  /** Connected to its broker (a timer is always connected). */
  readonly connected: boolean;
  /** Last error message, if any. */
  readonly lastError?: string;
  /** Free-form details (lag, assigned partitions, ...). */
  readonly detail?: Readonly<Record<string, unknown>>;
}

/** What the connector gives a source when it starts it. */
export interface SourceContext {
  /** Route a message to its functions; settles when every one has a final result. Rejects with
   * `ShutdownError` (code `ERR_SHUTDOWN`) when the connector stops first: then do not ack. */
  deliver(message: SourceMessage): Promise<DeliveryOutcome>;
  /** True while the engine has a free in-flight slot (pull sources poll only then). */
  hasCapacity(): boolean;
  /** Resolves when the engine has a free in-flight slot (or the signal aborts). */
  waitForCapacity(signal?: AbortSignal): Promise<void>;
  /** Topics the functions currently subscribe to (for subscribing by annotation). */
  topics(): readonly string[];
  /** Called with the new topic list whenever it changes; returns an unsubscribe function. */
  onTopicsChange(listener: (topics: readonly string[]) => void): () => void;
  /** Functions currently known, with their annotations. */
  functions(): readonly FunctionInfo[];
  /** Called after every topic-map rebuild that changed the function list; returns an unsubscribe function. */
  onFunctionsChange(listener: (functions: readonly FunctionInfo[]) => void): () => void;
  /** Report an error the source cannot recover from: the connector stops and restarts it with backoff. */
  fail(error: unknown): void;
  /** Logger bound to this source. */
  readonly logger: Logger;
  /** Aborted when the connector stops. */
  readonly signal: AbortSignal;
}

/** A message source: consumes a broker and hands messages to the connector. */
export interface Source {
  /** Short name for logs and metrics (`mqtt`, `kafka`, `sqs`, `timer`). */
  readonly name: string;
  /** Connect and begin consuming. May be called again after `stop()` (restart). */
  start(ctx: SourceContext): Promise<void>;
  /** Stop taking new messages, wait for in-flight `deliver` calls to settle or reject, ack what settled, disconnect. */
  stop(): Promise<void>;
  /** Current health, for /readyz and the connection-state metric. */
  health?(): SourceHealth;
  /** Messages waiting at the broker (consumer lag, queue depth), read from the broker; the connector samples it
   * every `backlogInterval` into `connector_backlog_messages`. Rejects when the broker cannot tell now. */
  backlog?(): Promise<readonly BacklogSample[]>;
}

/** Declare a source factory with typed options; the identity function, for inference and discoverability. */
export function defineSource<O, S extends Source = Source>(factory: (options: O) => S): (options: O) => S {
  return factory;
}
