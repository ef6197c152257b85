export { startTimerConnector, type TimerConnectorOptions } from './app.js';
export { type DemoOptions, startDemo } from './demo.js';
export { exitOnStartupFailure, type MainOptions, main, startupFailure } from './main.js';
