export { type MqttConnectorOptions, startMqttConnector } from './app.js';
