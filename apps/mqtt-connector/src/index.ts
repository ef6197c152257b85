export { MQTT_SETTINGS, type MqttConnectorOptions, startMqttConnector } from './app.js';
export { cli } from './main.js';
