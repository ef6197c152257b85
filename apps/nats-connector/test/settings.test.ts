import { natsOptionsFromEnv } from '@connector/source-nats';
import { testConnectorSettings } from '@connector/testing/conformance';
import { cli, NATS_SETTINGS } from '../src/index.js';

testConnectorSettings({
  app: 'nats-connector',
  cli,
  settings: NATS_SETTINGS,
  read: () => void natsOptionsFromEnv({ stream: 'EVENTS' }),
  help: [/stream +\(required in jetstream mode\)/],
  lookalikes: { nats_ur: 'nats_url', strem: 'stream' },
});
