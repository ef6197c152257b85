import { type Connector, type Env, EnvReader, type Logger, startConnectorFromEnv } from '@connector/core';
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
export function startConnector(options: StartOptions = {}): Promise<Connector> {
  return startConnectorFromEnv({
    ...options,
    name: 'template-connector',
    source: (env) => {
      const r = new EnvReader(env);
      return exampleSource({
        topic: r.string('topic') ?? 'example',
        interval: r.duration('interval', { min: 1 }) ?? 5000,
      });
    },
  });
}
