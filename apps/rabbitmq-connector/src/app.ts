import { type Connector, type Env, type Logger, startConnectorFromEnv } from '@connector/core';
import { amqpMatch, rabbitmqOptionsFromEnv, rabbitmqSource } from '@connector/source-rabbitmq';

/** Options of `startRabbitmqConnector`. */
export interface RabbitmqConnectorOptions {
  /** Environment (default `process.env`). */
  env?: Env;
  /** Handle SIGTERM/SIGINT (default true). */
  signals?: boolean;
  /** Logger (default: pino at env `log_level`). */
  logger?: Logger;
}

/** Read env, then start controller (AMQP topic matching: `*` one word, `#` zero or more) + RabbitMQ source. */
export function startRabbitmqConnector(options: RabbitmqConnectorOptions = {}): Promise<Connector> {
  return startConnectorFromEnv({
    env: options.env ?? process.env,
    name: 'rabbitmq-connector',
    source: (e) => rabbitmqSource(rabbitmqOptionsFromEnv(e)),
    // Annotations are matched like binding keys on a topic exchange: orders.* gets orders.created.
    controller: { topicMatcher: amqpMatch },
    signals: options.signals ?? true,
    ...(options.logger ? { logger: options.logger } : {}),
  });
}
