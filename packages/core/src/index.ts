export type { GatewayAuthOptions } from './auth.js';
export { type BacklogSample, DEFAULT_BACKLOG_INTERVAL } from './backlog.js';
export {
  CLOUDEVENTS_JSON,
  CLOUDEVENTS_MODES,
  type CloudEvents,
  type CloudEventsMode,
  type CloudEventsOptions,
  createCloudEvents,
} from './cloudevents.js';
export {
  CORE_SETTINGS,
  type ConnectorConfig,
  type ControllerOptions,
  type Credentials,
  checkOptionKeys,
  closestName,
  compact,
  configFromEnv,
  DEFAULT_GATEWAY_URL,
  type DeliveryOptions,
  type Env,
  EnvReader,
  editDistance,
  envNamesRead,
  type LogLevel,
  OPTION_KEYS,
  parseBool,
  parseDuration,
  type RetryOptions,
  type Setting,
  type SettingSuggestion,
  settingsHelp,
  type TopicMatcherOption,
  unknownSettings,
  wantsHelp,
} from './config.js';
export {
  type Connector,
  type ConnectorOptions,
  createConnector,
  type RunOptions,
  runConnector,
} from './connector.js';
export {
  type Controller,
  type ControllerStatus,
  createController,
  DEFAULT_MAX_TOPIC_MAP_ENTRIES,
  type ResolvedControllerOptions,
} from './controller.js';
export {
  checkDeadLetterFile,
  type DeadLetter,
  type DeadLetterHandler,
  fileDeadLetters,
  logDeadLetters,
} from './dead-letters.js';
export { DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_RETRY, retryAfterMs } from './engine.js';
export * from './errors.js';
export {
  type CliIo,
  type CliOptions,
  type CliTracing,
  connectorCli,
  type FromEnvOptions,
  isEntryPoint,
  startConnectorFromEnv,
} from './from-env.js';
export * from './headers.js';
export {
  HttpError,
  type HttpErrorCode,
  type HttpHandler,
  HttpPool,
  type HttpPoolOptions,
  type HttpRequest,
  type HttpTlsOptions,
} from './http-pool.js';
export {
  BATCH_CONTENT_TYPE,
  createInvoker,
  DEFAULT_MAX_RESPONSE_BYTES,
  DEFAULT_RETRY_ON_STATUS,
  type Invoker,
  type InvokerOptions,
} from './invoker.js';
export * from './kit/index.js';
export { createLogger, errorFields, type LoggerOptions, noopLogger, RepeatLimiter } from './logger.js';
export {
  ANNOTATION_PREFIX,
  type BatchPolicy,
  DEFAULT_BATCH_BYTES,
  DEFAULT_BATCH_WINDOW,
  type FunctionPolicy,
  POLICY_ANNOTATIONS,
  Policies,
} from './policy.js';
export { createResponsePrinter } from './printer.js';
export { ResponseHub } from './responses.js';
export { forgetSecret, REDACTED, readSecret, redactSecrets, redactUrl, registerSecret } from './secrets.js';
export * from './source.js';
export { mqttMatch, parseTopics, TopicMap } from './topic-map.js';
export { TRACER_NAME, tracingEnabled } from './tracing.js';
export type * from './types.js';
