export { envWithAliases, type NatsConnectorOptions, startNatsConnector } from './app.js';
