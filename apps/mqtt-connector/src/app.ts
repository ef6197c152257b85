import { ConfigError, type Connector, type Env, type Logger, startConnectorFromEnv } from '@connector/core';
import { envFromGoFlags, mqttOptionsFromEnv, mqttSource } from '@connector/source-mqtt';

/** Options of `startMqttConnector`. */
export interface MqttConnectorOptions {
  /** Environment (default `process.env`). */
  env?: Env;
  /** Go-style command-line flags, e.g. `['-broker=tcp://h:1883', '-topic=a/b']` (default none). */
  argv?: readonly string[];
  /** Handle SIGTERM/SIGINT (default true). */
  signals?: boolean;
  /** Logger (default: pino at env `log_level`). */
  logger?: Logger;
}

/** Read env (and Go flags), then start controller (MQTT topic matching) + MQTT source as one connector. */
export async function startMqttConnector(options: MqttConnectorOptions = {}): Promise<Connector> {
  const env: Env = { ...(options.env ?? process.env), ...envFromGoFlags(options.argv ?? []) };
  const gwUser = env['gw_username'];
  const gwPassword = env['gw_password'];
  if ((gwUser === undefined) !== (gwPassword === undefined))
    throw new ConfigError('gw_password', 'invalid gw_username/gw_password: set both or neither');
  return startConnectorFromEnv({
    env,
    name: 'mqtt-connector',
    source: (e) => mqttSource(mqttOptionsFromEnv(e)),
    controller: {
      topicMatcher: 'mqtt',
      ...(gwUser !== undefined && gwPassword !== undefined
        ? { credentials: { username: gwUser, password: gwPassword } }
        : {}),
    },
    signals: options.signals ?? true,
    ...(options.logger ? { logger: options.logger } : {}),
  });
}
