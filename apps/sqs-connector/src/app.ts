import {
  type Connector,
  configFromEnv,
  createController,
  createLogger,
  type Env,
  type Logger,
  runConnector,
} from '@connector/core';
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
export async function startSqsConnector(options: SqsConnectorOptions = {}): Promise<Connector> {
  const env = options.env ?? process.env;
  const config = configFromEnv(env);
  const sqs = sqsOptionsFromEnv(env);
  const source = sqsSource(sqs);
  const name = config.connectorName ?? 'sqs-connector';
  const logger = options.logger ?? createLogger({ level: config.logLevel, name });
  const { logLevel: _level, http, ...rest } = config;
  const controller = createController({ ...rest, connectorName: name, logger });
  logger.info({ gateway: config.gatewayUrl, queues: sqs.queues }, 'starting sqs connector');
  return runConnector({ ...rest, controller, source, http, logger, signals: options.signals ?? true });
}
