export { type CoreNatsRun, reduceSubjects, startCoreNats } from './core-nats.js';
export { NATS_ERRORS, natsError } from './errors.js';
export { type JetStreamRun, MANAGED_STREAM, nakDelay, startJetStream } from './jetstream.js';
export { coreMessage, jetStreamMessage, rawHeaders } from './message.js';
export {
  DEFAULT_CONSUMER,
  type NatsAuthOptions,
  type NatsDeliverPolicy,
  type NatsMode,
  type NatsSourceOptions,
  type NatsTlsOptions,
  natsOptionsFromEnv,
  parseServer,
  type ResolvedNatsOptions,
  redactServer,
  resolveNatsOptions,
} from './options.js';
export { replyAllowed, respond } from './reply.js';
export { type NatsSource, natsSource } from './source.js';
export { natsMatch, subjectCovers, subjectProblem } from './subjects.js';
