import { type Connector, type Env, type Logger, type Setting, startConnectorFromEnv } from '@connector/core';
import { kafkaOptionsFromEnv, kafkaSource } from '@connector/source-kafka';

/** The Kafka connector's own env settings (besides core's), for `--help` and the misspelling check. */
export const KAFKA_SETTINGS: readonly Setting[] = [
  { name: 'brokers', default: '(required)', help: 'host:port list, e.g. 127.0.0.1:9092' },
  { name: 'broker_host', help: 'same as brokers (the OpenFaaS kafka-connector name)' },
  { name: 'topics', help: 'topics to consume, comma-separated (default: the annotated topics)' },
  { name: 'group', default: 'openfaas-kafka-connector', help: 'consumer group' },
  { name: 'client_id', default: 'openfaas-kafka-connector', help: 'client id' },
  { name: 'from_beginning', default: 'true', help: 'a new group starts at the earliest offset' },
  { name: 'session_timeout', default: '30s', help: 'group session timeout' },
  { name: 'partition_concurrency', default: '16', help: 'partitions processed at once' },
  { name: 'ordering', default: 'key', help: 'key: one partition in order; none: one partition concurrently' },
  { name: 'commit_interval', default: '1s', help: 'commit settled offsets this often' },
  { name: 'revoke_timeout', default: '5s', help: 'wait for in-flight records on a rebalance' },
  { name: 'fetch_max_wait', default: '500ms', help: 'longest broker wait of a fetch' },
  { name: 'topic_check_interval', default: '30s', help: 'look again this often for topics the broker lacks' },
  { name: 'tls', default: 'false', help: 'connect with TLS' },
  { name: 'ca_file', help: 'CA certificate (PEM), implies TLS' },
  { name: 'cert_file', help: 'client certificate (PEM)' },
  { name: 'key_file', help: 'client key (PEM)' },
  { name: 'sasl_mechanism', help: 'plain, scram-sha-256 or scram-sha-512' },
  { name: 'sasl_username', help: 'SASL user' },
  { name: 'sasl_password', help: 'SASL password' },
  { name: 'sasl_password_file', help: 'file holding the SASL password' },
  { name: 'reply_topic', help: 'publish function responses to this topic' },
  { name: 'dead_letter_topic', help: 'publish failed records here (implies on_failure=dead-letter)' },
];

/** Options of `startKafkaConnector`. */
export interface KafkaConnectorOptions {
  /** Environment (default `process.env`). */
  env?: Env;
  /** Handle SIGTERM/SIGINT (default true). */
  signals?: boolean;
  /** Logger (default: pino at env `log_level`). */
  logger?: Logger;
}

/** Read env, then run the controller with the Kafka source as one connector (dead letters to `dead_letter_topic`). */
export function startKafkaConnector(options: KafkaConnectorOptions = {}): Promise<Connector> {
  const env = options.env ?? process.env;
  return startConnectorFromEnv({
    ...options,
    env,
    name: 'kafka-connector',
    settings: KAFKA_SETTINGS,
    source: (e) => kafkaSource(kafkaOptionsFromEnv(e)),
    // A dead-letter topic implies dead-lettering failed messages (then committing them) unless on_failure says otherwise.
    connector: (source) =>
      source.deadLetter
        ? {
            deadLetter: source.deadLetter,
            onFailure: env['on_failure']?.trim().toLowerCase() === 'redeliver' ? 'redeliver' : 'dead-letter',
          }
        : {},
  });
}
