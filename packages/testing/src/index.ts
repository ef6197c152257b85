export { OPENSSL, type TestCertificates, testCertificates } from './certs.js';
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
  type GatewayIam,
  type GatewayOptions,
  type GatewayTls,
  type IssuedToken,
  type RecordedRequest,
  startGateway,
  type TestGateway,
} from './gateway.js';
export { lateBound } from './late.js';
export { type LogLine, memoryLogger } from './logger.js';
export {
  type CapturedLogger,
  capturedLogger,
  connectorTexts,
  GATEWAY_TEST_SECRET,
  type RefusedRun,
  refusedConnectorTexts,
  secretFiles,
} from './secrets.js';
export {
  canConnect,
  findExecutable,
  freePort,
  type ServerProcess,
  type ServerProcessOptions,
  type ServerProcessPlace,
  startServerProcess,
} from './server-process.js';
export {
  type ConformanceCase,
  ConformanceError,
  type ConformanceSuite,
  conformanceSuite,
  type SourceHarness,
  type SuiteApi,
} from './suite.js';
export { type WaitForOptions, WaitForTimeoutError, waitFor } from './wait.js';
