import {
  ConfigError,
  type Connector,
  type Env,
  EnvReader,
  type Logger,
  type Setting,
  startConnectorFromEnv,
} from '@connector/core';
import { envFromGoFlags, mqttOptionsFromEnv, mqttSource } from '@connector/source-mqtt';

/** The MQTT connector's own env settings (besides core's), for `--help` and the misspelling check. */
export const MQTT_SETTINGS: readonly Setting[] = [
  { name: 'broker', default: '(required)', help: 'broker URL(s), e.g. mqtt://127.0.0.1:1883 (flag -broker)' },
  { name: 'topic', help: 'topic filter(s) to subscribe to, comma-separated (default: the annotated topics)' },
  { name: 'topics', help: 'same as topic' },
  {
    name: 'id',
    default: 'openfaas-mqtt-connector',
    help: 'client id (keep it stable: the session survives)',
  },
  { name: 'client_id', help: 'same as id' },
  { name: 'qos', default: '1', help: '0, 1 or 2' },
  { name: 'clean', default: 'false', help: 'start with a clean session' },
  { name: 'protocol_version', default: '5', help: '3.1.1 (or 4), 5, or 3.1' },
  { name: 'username', help: 'broker user' },
  { name: 'password', help: 'broker password (needs username)' },
  { name: 'password_file', help: 'file holding the broker password' },
  { name: 'ca_file', help: 'CA certificate (PEM) for TLS' },
  { name: 'cert_file', help: 'client certificate (PEM), with key_file' },
  { name: 'key_file', help: 'client key (PEM), with cert_file' },
  { name: 'reject_unauthorized', default: 'true', help: "verify the broker's certificate" },
  { name: 'session_expiry', default: 'never', help: 'MQTT 5 session expiry after a disconnect' },
  { name: 'shared_group', help: 'subscribe as $share/<group>/<filter>' },
  {
    name: 'response_topics',
    help: "filters a message's MQTT 5 responseTopic must match to get a reply (default: none)",
  },
  { name: 'trim_channel_key', default: 'false', help: 'strip the leading / of topics' },
  { name: 'trim-channel-key', help: 'same as trim_channel_key' },
  { name: 'keepalive', default: '60s', help: 'MQTT keepalive' },
  { name: 'connect_timeout', default: '30s', help: 'wait for CONNACK' },
  { name: 'reconnect_delay', default: '1s', help: 'first reconnect delay' },
  { name: 'reconnect_delay_max', default: '30s', help: 'reconnect delay cap' },
  { name: 'redelivery_delay', default: '5s', help: 'reconnect after an unacked failure to get redelivery' },
  { name: 'receive_maximum', default: '64', help: 'QoS 1 messages un-PUBACKed before reading pauses' },
  { name: 'max_pending', default: '1000', help: 'deliveries open before reading pauses' },
  { name: 'ordering', default: 'key', help: 'key: one topic in order; none: one topic concurrently' },
  { name: 'gw_username', help: 'gateway user (with gw_password; flag -gw-username)' },
  { name: 'gw_password', help: 'gateway password (flag -gw-password)' },
  { name: 'gw_password_file', help: 'file holding the gateway password' },
];

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
  const r = new EnvReader(env);
  const gwUser = r.string('gw_username');
  const gwPassword = r.secret('gw_password');
  if ((gwUser === undefined) !== (gwPassword === undefined))
    throw new ConfigError('gw_password', 'invalid gw_username/gw_password: set both or neither');
  return startConnectorFromEnv({
    env,
    name: 'mqtt-connector',
    settings: MQTT_SETTINGS,
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
