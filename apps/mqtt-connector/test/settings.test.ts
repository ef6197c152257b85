import { mqttOptionsFromEnv } from '@connector/source-mqtt';
import { testConnectorSettings } from '@connector/testing/conformance';
import { cli, MQTT_SETTINGS } from '../src/index.js';

testConnectorSettings({
  app: 'mqtt-connector',
  cli,
  settings: MQTT_SETTINGS,
  read: () => void mqttOptionsFromEnv({ broker: 'mqtt://127.0.0.1:1883', topic: 'a/b' }),
  help: [/broker +\(required\)/],
  lookalikes: { broker_host: 'broker', brokr: 'broker' },
});
