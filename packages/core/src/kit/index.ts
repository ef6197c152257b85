// The source kit: plumbing every source shares, so no source keeps its own copy.
export { type AckDecision, ackDecision, rejectionDecision, settleDelivery } from './ack.js';
export { Backoff, type BackoffOptions, backoff } from './backoff.js';
export { errorMessage, HealthState } from './health.js';
export { InFlight } from './in-flight.js';
export {
  readSettingFile,
  readTlsFiles,
  type TlsFilePaths,
  type TlsFileSettings,
  type TlsFiles,
} from './setting-files.js';
export { sleep } from './sleep.js';
export { TurnBatch } from './turn-batch.js';
