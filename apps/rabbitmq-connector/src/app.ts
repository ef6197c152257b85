import { type Connector, type Env, type Logger, type Setting, startConnectorFromEnv } from '@connector/core';
import { amqpMatch, rabbitmqOptionsFromEnv, rabbitmqSource } from '@connector/source-rabbitmq';

/** The RabbitMQ connector's own env settings (besides core's), for `--help` and the misspelling check. */
export const RABBITMQ_SETTINGS: readonly Setting[] = [
  { name: 'rabbitmq_url', default: '(required)', help: 'amqp://user:password@host:5672/vhost' },
  { name: 'rabbitmq_url_file', help: 'file holding rabbitmq_url (instead of rabbitmq_url)' },
  { name: 'exchange', default: 'amq.topic', help: 'topic exchange the queue is bound to' },
  { name: 'exchange_declare', default: 'true', help: 'declare the exchange (not for amq.*)' },
  { name: 'queue', default: '<connector_name>', help: 'the durable queue of this connector' },
  { name: 'queues', help: 'consume these existing queues instead' },
  { name: 'queue_type', default: 'classic', help: 'classic, quorum or stream' },
  { name: 'topics', help: 'binding keys (default: the annotated topics)' },
  { name: 'prefetch', default: '64', help: 'unacked messages per queue' },
  { name: 'delivery_limit', help: 'quorum queues: deliveries before dead-lettering' },
  { name: 'dead_letter_exchange', help: 'x-dead-letter-exchange of the queue' },
  { name: 'dead_letter_routing_key', help: 'x-dead-letter-routing-key (default: their own)' },
  { name: 'reply_to', help: 'publish responses to a message reply-to' },
  { name: 'reply_to_allow', help: 'reply-to queues that may be answered' },
  { name: 'connect_timeout', default: '30s', help: 'TCP + AMQP handshake timeout' },
  { name: 'connection_name', default: '@connector/source-rabbitmq', help: 'name in the management UI' },
  { name: 'username', help: 'broker user (instead of the one in rabbitmq_url)' },
  { name: 'username_file', help: 'file holding the broker user' },
  { name: 'password', help: 'broker password' },
  { name: 'password_file', help: 'file holding the broker password' },
  { name: 'heartbeat', default: '60s', help: 'AMQP heartbeat (0 disables it)' },
  { name: 'reconnect_delay', default: '500ms', help: 'first reconnect delay' },
  { name: 'reconnect_delay_max', default: '30s', help: 'reconnect delay cap' },
  { name: 'redelivery_delay', default: '1s', help: 'back-off before a failed delivery is requeued' },
  { name: 'redelivery_delay_max', default: '30s', help: 'that back-off cap' },
  { name: 'ca_file', help: 'CA certificate (PEM) for amqps' },
  { name: 'cert_file', help: 'client certificate (PEM)' },
  { name: 'key_file', help: 'client key (PEM)' },
  { name: 'reject_unauthorized', default: 'true', help: "verify the broker's certificate" },
];

/** Options of `startRabbitmqConnector`. */
export interface RabbitmqConnectorOptions {
  /** Environment (default `process.env`). */
  env?: Env;
  /** Handle SIGTERM/SIGINT (default true). */
  signals?: boolean;
  /** Logger (default: pino at env `log_level`). */
  logger?: Logger;
}

/** Read env, then start controller (AMQP topic matching: `*` one word, `#` zero or more) + RabbitMQ source. */
export function startRabbitmqConnector(options: RabbitmqConnectorOptions = {}): Promise<Connector> {
  return startConnectorFromEnv({
    env: options.env ?? process.env,
    name: 'rabbitmq-connector',
    settings: RABBITMQ_SETTINGS,
    source: (e) => rabbitmqSource(rabbitmqOptionsFromEnv(e)),
    // Annotations are matched like binding keys on a topic exchange: orders.* gets orders.created.
    controller: { topicMatcher: amqpMatch },
    signals: options.signals ?? true,
    ...(options.logger ? { logger: options.logger } : {}),
  });
}
