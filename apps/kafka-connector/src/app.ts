import {
  type Connector,
  configFromEnv,
  createController,
  createLogger,
  type Env,
  type Logger,
  runConnector,
} from '@connector/core';
import { kafkaOptionsFromEnv, kafkaSource } from '@connector/source-kafka';

/** Options of `startKafkaConnector`. */
export interface KafkaConnectorOptions {
  /** Environment (default `process.env`). */
  env?: Env;
  /** Handle SIGTERM/SIGINT (default true). */
  signals?: boolean;
  /** Logger (default: pino at env `log_level`). */
  logger?: Logger;
}

/** Read env, then run the controller with the Kafka source as one connector (dead letters to `dead_letter_topic`). */
export async function startKafkaConnector(options: KafkaConnectorOptions = {}): Promise<Connector> {
  const env = options.env ?? process.env;
  const config = configFromEnv(env);
  const kafka = kafkaOptionsFromEnv(env);
  const source = kafkaSource(kafka);
  const name = config.connectorName ?? 'kafka-connector';
  const logger = options.logger ?? createLogger({ level: config.logLevel, name });
  const { logLevel: _level, http, ...rest } = config;
  const controller = createController({ ...rest, connectorName: name, logger });
  logger.info(
    { gateway: config.gatewayUrl, brokers: kafka.brokers, topics: kafka.topics ?? 'from annotations' },
    'starting kafka connector',
  );
  return runConnector({
    ...rest,
    // A dead-letter topic implies dead-lettering failed messages (then committing them) unless on_failure says otherwise.
    ...(source.deadLetter
      ? { deadLetter: source.deadLetter, onFailure: rest.onFailure ?? 'dead-letter' }
      : {}),
    controller,
    source,
    http,
    logger,
    signals: options.signals ?? true,
  });
}
