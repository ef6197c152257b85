export { startTimerConnector, TIMER_SETTINGS, type TimerConnectorOptions } from './app.js';
export { type DemoOptions, startDemo } from './demo.js';
export { cli, exitOnStartupFailure, type MainOptions, main, startupFailure } from './main.js';
