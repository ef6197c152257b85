export * from './errors.js';
export * from './source.js';
export type * from './types.js';
