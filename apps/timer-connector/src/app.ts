import {
  type Connector,
  configFromEnv,
  createController,
  createLogger,
  type Env,
  type Logger,
  runConnector,
} from '@connector/core';
import { timerSourceFromEnv } from '@connector/source-timer';

/** Options of `startTimerConnector`. */
export interface TimerConnectorOptions {
  /** Environment (default `process.env`). */
  env?: Env;
  /** Handle SIGTERM/SIGINT (default true). */
  signals?: boolean;
  /** Logger (default: pino at env `log_level`). */
  logger?: Logger;
}

/** Read env, then run the controller with the cron (default) or interval source as one connector. */
export async function startTimerConnector(options: TimerConnectorOptions = {}): Promise<Connector> {
  const env = options.env ?? process.env;
  const config = configFromEnv(env);
  const { source, options: timer } = timerSourceFromEnv(env);
  const name = config.connectorName ?? 'timer-connector';
  const logger = options.logger ?? createLogger({ level: config.logLevel, name });
  const { logLevel: _level, http, ...rest } = config;
  const controller = createController({ ...rest, connectorName: name, logger });
  logger.info({ gateway: config.gatewayUrl, ...timer }, 'starting timer connector');
  return runConnector({ ...rest, controller, source, http, logger, signals: options.signals ?? true });
}
