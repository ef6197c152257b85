export { type KafkaConnectorOptions, startKafkaConnector } from './app.js';
