export { SQS_ERRORS, sqsError } from './errors.js';
export { headersOf } from './headers.js';
export { checkSqsOptions, type SqsSourceOptions, sqsOptionsFromEnv } from './options.js';
export { type SqsSource, sqsSource } from './source.js';
export type { SqsStat } from './stats.js';
