export type { BatchControl, KafkaClient, KafkaRecord, PartitionLag } from './client.js';
export { kafkajsClient } from './client.js';
export { installCodecs } from './codecs.js';
export { KAFKA_ERRORS, kafkaError } from './errors.js';
export {
  checkKafkaOptions,
  type KafkaSourceOptions,
  kafkaOptionsFromEnv,
  type SaslMechanism,
} from './options.js';
export {
  type KafkaSource,
  type KafkaSourceStat,
  kafkaDeadLetterTopic,
  kafkaSource,
  toMessage,
} from './source.js';
