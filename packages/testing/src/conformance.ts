import type { Source } from '@connector/core';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { registerSuite, type SourceHarness } from './suite.js';

export { type SettingsHarness, testConnectorSettings } from './settings-suite.js';
export {
  type ConformanceCase,
  ConformanceError,
  type ConformanceSuite,
  conformanceSuite,
  type SourceHarness,
} from './suite.js';

/**
 * Register the contract every @connector source must honour as vitest tests: delivers to matched functions, acks
 * only settled messages (never after ShutdownError), redelivers after a crash, holds back without capacity, `stop()`
 * waits for deliveries and ends intake, restarts, reports health.
 */
export function testSource<S extends Source>(harness: SourceHarness<S>): void {
  registerSuite(harness, { describe, it, beforeAll, afterAll });
}
