import { type Connector, type Env, type Logger, startConnectorFromEnv } from '@connector/core';
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
export function startKafkaConnector(options: KafkaConnectorOptions = {}): Promise<Connector> {
  const env = options.env ?? process.env;
  return startConnectorFromEnv({
    ...options,
    env,
    name: 'kafka-connector',
    source: (e) => kafkaSource(kafkaOptionsFromEnv(e)),
    // A dead-letter topic implies dead-lettering failed messages (then committing them) unless on_failure says otherwise.
    connector: (source) =>
      source.deadLetter
        ? {
            deadLetter: source.deadLetter,
            onFailure: env['on_failure']?.trim().toLowerCase() === 'redeliver' ? 'redeliver' : 'dead-letter',
          }
        : {},
  });
}
