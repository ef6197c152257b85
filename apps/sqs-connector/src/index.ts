export { SQS_SETTINGS, type SqsConnectorOptions, startSqsConnector } from './app.js';
export { cli } from './main.js';
