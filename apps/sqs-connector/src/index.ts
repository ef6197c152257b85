export { type SqsConnectorOptions, startSqsConnector } from './app.js';
