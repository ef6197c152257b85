export { RABBITMQ_SETTINGS, type RabbitmqConnectorOptions, startRabbitmqConnector } from './app.js';
export { cli } from './main.js';
