export { startTimerConnector, type TimerConnectorOptions } from './app.js';
export { type DemoOptions, startDemo } from './demo.js';
