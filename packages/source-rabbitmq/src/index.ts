export { AMQP_ERRORS, amqpError, replyCodeName } from './errors.js';
export { deathCount, headerValue, toSourceMessage } from './message.js';
export {
  DEFAULT_EXCHANGE,
  DEFAULT_QUEUE,
  parseQueues,
  parseRabbitmqUrl,
  queueNameProblem,
  type RabbitmqQueueSpec,
  type RabbitmqSourceOptions,
  type RabbitmqTlsOptions,
  type ResolvedQueue,
  type ResolvedRabbitmqOptions,
  rabbitmqOptionsFromEnv,
  redactUrl,
  resolveRabbitmqOptions,
} from './options.js';
export { replyTarget } from './reply.js';
export { amqpMatch, bindingKeyProblem } from './routing.js';
export { type RabbitmqSource, type RabbitmqStats, rabbitmqSource } from './source.js';
