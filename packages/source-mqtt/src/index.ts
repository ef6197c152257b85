export { assertMqttInternals, TESTED_MQTT_VERSION } from './acks.js';
export { MQTT_ERRORS, mqttError } from './connection.js';
export { covers, reduceFilters } from './filters.js';
export { headersOf, toSourceMessage } from './message.js';
export {
  DEFAULT_CLIENT_ID,
  envFromGoFlags,
  type MqttOrdering,
  type MqttProtocolVersion,
  type MqttQos,
  type MqttSourceOptions,
  type MqttTlsOptions,
  mqttOptionsFromEnv,
  parseBroker,
  type ResolvedMqttOptions,
  redactUrl,
  resolveMqttOptions,
  topicFilterProblem,
} from './options.js';
export { type MqttSource, mqttSource } from './source.js';
