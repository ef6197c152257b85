import { rabbitmqOptionsFromEnv } from '@connector/source-rabbitmq';
import { testConnectorSettings } from '@connector/testing/conformance';
import { cli, RABBITMQ_SETTINGS } from '../src/index.js';

testConnectorSettings({
  app: 'rabbitmq-connector',
  cli,
  settings: RABBITMQ_SETTINGS,
  read: () => void rabbitmqOptionsFromEnv({ rabbitmq_url: 'amqp://127.0.0.1:5672' }),
  help: [/rabbitmq_url +\(required\)/],
  lookalikes: { rabbit_url: 'rabbitmq_url', exchang: 'exchange' },
});
