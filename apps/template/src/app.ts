import {
  type Connector,
  type Env,
  EnvReader,
  type Logger,
  type Setting,
  startConnectorFromEnv,
} from '@connector/core';
import { exampleSource } from './source.js';

/** This connector's own env settings (besides core's), for `--help` and the misspelling check. */
export const SETTINGS: readonly Setting[] = [
  { name: 'topic', default: 'example', help: 'topic of the messages' },
  { name: 'interval', default: '5s', help: 'one message this often' },
];

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
    settings: SETTINGS,
    source: (env) => {
      const r = new EnvReader(env);
      return exampleSource({
        topic: r.string('topic') ?? 'example',
        interval: r.duration('interval', { min: 1 }) ?? 5000,
      });
    },
  });
}
