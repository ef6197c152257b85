import type { Source } from '@connector/core';
import { registerSuite, type SourceHarness, type SuiteApi } from './suite.js';

export { type Cleanups, cleanups } from './cleanups.js';
export {
  type Answer,
  type Answerer,
  createTestContext,
  type DeliveryState,
  deferred,
  hold,
  outcomes,
  type TestContext,
  type TestContextOptions,
  type TestDelivery,
} from './context.js';
export {
  type Fault,
  type FunctionCall,
  type FunctionHandler,
  type FunctionRequest,
  type FunctionResponse,
  type FunctionSpec,
  type GatewayOptions,
  type RecordedRequest,
  startGateway,
  type TestGateway,
} from './gateway.js';
export {
  type ConformanceCase,
  ConformanceError,
  type ConformanceSuite,
  conformanceSuite,
  type SourceHarness,
  type SuiteApi,
} from './suite.js';
export { type WaitForOptions, WaitForTimeoutError, waitFor } from './wait.js';

/**
 * `testSource` of `@connector/testing/conformance`, kept here for existing imports without importing vitest: it
 * registers the suite with the vitest running the calling test file (the API vitest exposes to in-source tests).
 * Outside vitest it throws; run `conformanceSuite(harness).cases` with another runner instead.
 */
export function testSource<S extends Source>(harness: SourceHarness<S>): void {
  const vitest = (globalThis as { __vitest_index__?: SuiteApi }).__vitest_index__;
  if (vitest === undefined) {
    throw new Error(
      'testSource() registers vitest tests: call it from a test file vitest runs (import it from @connector/testing/conformance), or run conformanceSuite(harness).cases with your own runner',
    );
  }
  registerSuite(harness, vitest);
}
