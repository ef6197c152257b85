import { type Connector, type Env, type Logger, startConnectorFromEnv } from '@connector/core';
import { sqsOptionsFromEnv, sqsSource } from '@connector/source-sqs';

/** Options of `startSqsConnector`. */
export interface SqsConnectorOptions {
  /** Environment (default `process.env`). */
  env?: Env;
  /** Handle SIGTERM/SIGINT (default true). */
  signals?: boolean;
  /** Logger (default: pino at env `log_level`). */
  logger?: Logger;
}

/** Read env, then run the controller with the SQS source as one connector. */
export function startSqsConnector(options: SqsConnectorOptions = {}): Promise<Connector> {
  return startConnectorFromEnv({
    ...options,
    name: 'sqs-connector',
    source: (env) => sqsSource(sqsOptionsFromEnv(env)),
  });
}
