import { kafkaOptionsFromEnv } from '@connector/source-kafka';
import { testConnectorSettings } from '@connector/testing/conformance';
import { cli, KAFKA_SETTINGS } from '../src/index.js';

testConnectorSettings({
  app: 'kafka-connector',
  cli,
  settings: KAFKA_SETTINGS,
  read: () => void kafkaOptionsFromEnv({ brokers: '127.0.0.1:9092' }),
  help: [/brokers +\(required\)/],
  lookalikes: { broker: 'brokers', topic: 'topics' },
});
