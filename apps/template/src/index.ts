export { type StartOptions, startConnector } from './app.js';
export { type ExampleSourceOptions, exampleSource } from './source.js';
