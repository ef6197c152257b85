// The MQTT tests' names for @connector/testing's test context (promoted from here; one implementation).
import { createTestContext, outcomes } from '@connector/testing';

export { type Answer, deferred, type TestContext } from '@connector/testing';

/** A delivered outcome (ack) with an optional first result body. */
export const delivered = outcomes.delivered;

/** A failed outcome (no ack: redeliver). */
export const failed = outcomes.failed();

/** Create a test context; `answer` decides each delivery's outcome (default: delivered at once). */
export const testContext = createTestContext;
