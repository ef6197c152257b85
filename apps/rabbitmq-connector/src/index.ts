export { type RabbitmqConnectorOptions, startRabbitmqConnector } from './app.js';
