export { allowedHeaderName, contentTypeOf, headersFromPacket, headerValue } from './headers.js';
export {
  DEFAULT_CLIENT_ID,
  envFromGoFlags,
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
