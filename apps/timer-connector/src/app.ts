import { type Connector, type Env, type Logger, startConnectorFromEnv } from '@connector/core';
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
export function startTimerConnector(options: TimerConnectorOptions = {}): Promise<Connector> {
  return startConnectorFromEnv({
    ...options,
    name: 'timer-connector',
    source: (env) => timerSourceFromEnv(env).source,
  });
}
