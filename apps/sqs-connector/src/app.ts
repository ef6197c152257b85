import { type Connector, type Env, type Logger, type Setting, startConnectorFromEnv } from '@connector/core';
import { sqsOptionsFromEnv, sqsSource } from '@connector/source-sqs';

/** The SQS connector's own env settings (besides core's), for `--help` and the misspelling check. */
export const SQS_SETTINGS: readonly Setting[] = [
  { name: 'queue_url', default: '(this or queue_name)', help: 'queue URL(s), comma-separated' },
  { name: 'queue_name', help: 'queue name(s), comma-separated' },
  { name: 'region', help: "AWS region (default: the SDK's chain, e.g. AWS_REGION)" },
  { name: 'endpoint', help: 'SQS endpoint, e.g. http://127.0.0.1:4566 for an emulator' },
  { name: 'wait_time', default: '20s', help: 'long-poll wait, 0s-20s' },
  { name: 'max_messages', default: '10', help: 'messages per receive, 1-10' },
  { name: 'visibility_timeout', help: "visibility timeout of received messages (default: the queue's)" },
  { name: 'pollers', default: '1', help: 'concurrent long polls per queue' },
  { name: 'ordering', default: 'key', help: 'key: one FIFO group in order; none: one group concurrently' },
  { name: 'topic_attribute', help: 'message attribute holding the topic (default: the queue name)' },
  { name: 'visibility_heartbeat', default: 'true', help: 'extend visibility of long invocations' },
  { name: 'release_on_stop', default: 'true', help: 'make unsettled messages visible again on stop' },
  { name: 'abort_poll_on_stop', default: 'false', help: 'abort the long poll on stop' },
  {
    name: 'fast_path',
    default: 'true',
    help: "send ReceiveMessage/DeleteMessageBatch/ChangeMessageVisibility itself, without the SDK's middleware",
  },
  { name: 'access_key_id', help: "AWS access key id (default: the SDK's chain, e.g. AWS_ACCESS_KEY_ID)" },
  { name: 'access_key_id_file', help: 'file holding the access key id' },
  { name: 'secret_access_key', help: 'AWS secret access key (with access_key_id)' },
  { name: 'secret_access_key_file', help: 'file holding the secret access key' },
  { name: 'session_token', help: 'AWS session token (temporary credentials)' },
  { name: 'session_token_file', help: 'file holding the session token' },
];

/** Options of `startSqsConnector`. */
export interface SqsConnectorOptions {
  /** Environment (default `process.env`). */
  env?: Env;
  /** Handle SIGTERM/SIGINT (default true). */
  signals?: boolean;
  /** Logger (default: pino at env `log_level`). */
  logger?: Logger;
}

/** Read env, then run the controller with the SQS source as one connector. */
export function startSqsConnector(options: SqsConnectorOptions = {}): Promise<Connector> {
  return startConnectorFromEnv({
    ...options,
    name: 'sqs-connector',
    settings: SQS_SETTINGS,
    source: (env) => sqsSource(sqsOptionsFromEnv(env)),
  });
}
