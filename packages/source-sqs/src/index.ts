export { checkSqsOptions, type SqsSourceOptions, sqsOptionsFromEnv } from './options.js';
export { headersOf, type SqsSource, sqsSource } from './source.js';
