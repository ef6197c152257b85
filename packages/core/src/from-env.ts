import { type ControllerOptions, configFromEnv, type Env } from './config.js';
import { type Connector, type ConnectorOptions, runConnector } from './connector.js';
import { createController } from './controller.js';
import { createLogger } from './logger.js';
import type { Source } from './source.js';
import type { Logger } from './types.js';

/** Options of `startConnectorFromEnv`. */
export interface FromEnvOptions<S extends Source> {
  /** Default connector name (`X-Connector`, logger name) unless env `connector_name` sets one. */
  name: string;
  /** Build the source from the same environment (e.g. `(env) => mqttSource(mqttOptionsFromEnv(env))`). */
  source: (env: Env) => S;
  /** Environment (default `process.env`). */
  env?: Env;
  /** Handle SIGTERM/SIGINT (default true). */
  signals?: boolean;
  /** Logger (default: pino at env `log_level`). */
  logger?: Logger;
  /** Controller settings that env does not carry (e.g. `{ topicMatcher: 'mqtt' }`). */
  controller?: Partial<ControllerOptions>;
  /** Connector settings derived from the source (e.g. its dead-letter handler). */
  connector?: (source: S) => Partial<Omit<ConnectorOptions, 'controller' | 'source'>>;
}

/**
 * What every deployable connector does: read the OpenFaaS env names (`configFromEnv`), build the source from the
 * same env, then run controller + source with signal handling. Invalid env throws a one-line ConfigError.
 */
export async function startConnectorFromEnv<S extends Source>(
  options: FromEnvOptions<S>,
): Promise<Connector> {
  const env = options.env ?? process.env;
  const config = configFromEnv(env);
  const source = options.source(env);
  const name = config.connectorName ?? options.name;
  const logger = options.logger ?? createLogger({ level: config.logLevel, name });
  const { logLevel: _level, http, ...rest } = config;
  const controller = createController({ ...rest, connectorName: name, ...options.controller, logger });
  logger.info({ gateway: config.gatewayUrl, source: source.name }, `starting ${name}`);
  return runConnector({
    ...rest,
    ...options.connector?.(source),
    controller,
    source,
    http,
    logger,
    signals: options.signals ?? true,
  });
}
