import { type Connector, type Env, type Logger, type Setting, startConnectorFromEnv } from '@connector/core';
import { timerSourceFromEnv } from '@connector/source-timer';

/** The timer connector's own env settings (besides core's), for `--help` and the misspelling check. */
export const TIMER_SETTINGS: readonly Setting[] = [
  { name: 'mode', default: 'cron', help: 'cron (schedule annotations) or interval' },
  { name: 'topic', default: 'cron-function', help: 'topic invoked (required with mode=interval)' },
  { name: 'interval', help: 'period with mode=interval, e.g. 10s (required there)' },
  { name: 'body', help: 'request body with mode=interval' },
  { name: 'timezone', help: 'IANA timezone of cron schedules (default: the process)' },
  { name: 'demo_gateway_port', default: '8080', help: 'pnpm start only: port of the demo gateway' },
];

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
    settings: TIMER_SETTINGS,
    source: (env) => timerSourceFromEnv(env).source,
  });
}
