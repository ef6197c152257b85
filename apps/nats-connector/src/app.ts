import { type Connector, type Env, type Logger, startConnectorFromEnv } from '@connector/core';
import { natsMatch, natsOptionsFromEnv, natsSource } from '@connector/source-nats';

/** Options of `startNatsConnector`. */
export interface NatsConnectorOptions {
  /** Environment (default `process.env`). */
  env?: Env;
  /** Handle SIGTERM/SIGINT (default true). */
  signals?: boolean;
  /** Logger (default: pino at env `log_level`). */
  logger?: Logger;
}

/** The OpenFaaS nats-connector's `asynchronous_invocation` is core's `async_invocation` (which wins when both are set). */
export function envWithAliases(env: Env): Env {
  const alias = env['asynchronous_invocation'];
  if (alias === undefined || env['async_invocation'] !== undefined) return env;
  return { ...env, async_invocation: alias };
}

/** Read env, then start controller (NATS wildcard topic matching) + NATS source as one connector. */
export async function startNatsConnector(options: NatsConnectorOptions = {}): Promise<Connector> {
  return startConnectorFromEnv({
    env: envWithAliases(options.env ?? process.env),
    name: 'nats-connector',
    source: (e) => natsSource(natsOptionsFromEnv(e)),
    controller: { topicMatcher: natsMatch },
    signals: options.signals ?? true,
    ...(options.logger ? { logger: options.logger } : {}),
  });
}
