export {
  BrokerConfigError,
  BrokerError,
  type GroupInfo,
  type GroupMemberInfo,
  type KafkaBrokerOptions,
  type KafkaBrokerSaslOptions,
  type KafkaBrokerTlsOptions,
  type KafkaTestBroker,
  type ProducedRecord,
  startKafkaBroker,
} from './broker.js';
export { ApiKey, ErrorCode, SUPPORTED_VERSIONS } from './protocol.js';
export {
  crc32c,
  type DecodedRecord,
  decodeRecordBatch,
  RecordBatchError,
  type RecordHeader,
} from './records.js';
export {
  SASL_MECHANISMS,
  SaslAuthenticationError,
  type SaslMechanismName,
  type SaslUser,
  type ScramCredential,
  ScramServer,
  scramCredential,
} from './sasl.js';
