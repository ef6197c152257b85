export { KAFKA_SETTINGS, type KafkaConnectorOptions, startKafkaConnector } from './app.js';
export { cli } from './main.js';
