import {
  type Connector,
  configFromEnv,
  createController,
  createLogger,
  type Env,
  EnvReader,
  type Logger,
  runConnector,
} from '@connector/core';
import { exampleSource } from './source.js';

/** Options of `startConnector`. */
export interface StartOptions {
  /** Environment (default `process.env`). */
  env?: Env;
  /** Handle SIGTERM/SIGINT (default true). */
  signals?: boolean;
  /** Logger (default: pino at env `log_level`). */
  logger?: Logger;
}

/** Read env (the OpenFaaS connector names plus this source's), then run controller + source as one connector. */
export async function startConnector(options: StartOptions = {}): Promise<Connector> {
  const env = options.env ?? process.env;
  const config = configFromEnv(env);
  const r = new EnvReader(env);
  const source = exampleSource({
    topic: r.string('topic') ?? 'example',
    interval: r.duration('interval', { min: 1 }) ?? 5000,
  });
  const name = config.connectorName ?? 'template-connector';
  const logger = options.logger ?? createLogger({ level: config.logLevel, name });
  const { logLevel: _level, http, ...rest } = config;
  const controller = createController({ ...rest, connectorName: name, logger });
  return runConnector({ ...rest, controller, source, http, logger, signals: options.signals ?? true });
}
