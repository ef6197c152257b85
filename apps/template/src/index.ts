export { SETTINGS, type StartOptions, startConnector } from './app.js';
export { cli } from './main.js';
export { type ExampleSourceOptions, exampleSource } from './source.js';
