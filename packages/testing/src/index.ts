export { type SourceHarness, testSource } from './conformance.js';
export {
  type Fault,
  type FunctionHandler,
  type FunctionRequest,
  type FunctionResponse,
  type FunctionSpec,
  type GatewayOptions,
  type RecordedRequest,
  startGateway,
  type TestGateway,
} from './gateway.js';
