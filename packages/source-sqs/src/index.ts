export { checkSqsOptions, type SqsSourceOptions, sqsOptionsFromEnv } from './options.js';
export { headersOf, headerValue, type SqsSource, type SqsStat, sqsSource } from './source.js';
