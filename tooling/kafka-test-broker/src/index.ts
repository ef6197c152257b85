export {
  BrokerConfigError,
  BrokerError,
  type GroupInfo,
  type GroupMemberInfo,
  type KafkaBrokerOptions,
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
