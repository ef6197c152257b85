export { envWithAliases, NATS_SETTINGS, type NatsConnectorOptions, startNatsConnector } from './app.js';
export { cli } from './main.js';
