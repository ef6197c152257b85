import {
  ConfigError,
  type Connector,
  configFromEnv,
  createController,
  createLogger,
  type Env,
  type Logger,
  runConnector,
} from '@connector/core';
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
  const config = configFromEnv(env);
  const mqtt = mqttOptionsFromEnv(env);
  const gwUser = env['gw_username'];
  const gwPassword = env['gw_password'];
  if ((gwUser === undefined) !== (gwPassword === undefined))
    throw new ConfigError('gw_password', 'invalid gw_username/gw_password: set both or neither');
  const credentials =
    gwUser !== undefined && gwPassword !== undefined
      ? { username: gwUser, password: gwPassword }
      : config.credentials;
  const logger =
    options.logger ??
    createLogger({ level: config.logLevel, name: config.connectorName ?? 'mqtt-connector' });
  const { logLevel: _level, http, ...rest } = config;
  const controller = createController({
    ...rest,
    ...(credentials ? { credentials } : {}),
    connectorName: config.connectorName ?? 'mqtt-connector',
    topicMatcher: 'mqtt',
    logger,
  });
  return runConnector({
    ...rest,
    controller,
    source: mqttSource(mqtt),
    http,
    logger,
    signals: options.signals ?? true,
  });
}
