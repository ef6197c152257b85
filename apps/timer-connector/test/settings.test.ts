import { timerSourceFromEnv } from '@connector/source-timer';
import { testConnectorSettings } from '@connector/testing/conformance';
import { cli, TIMER_SETTINGS } from '../src/index.js';

testConnectorSettings({
  app: 'timer-connector',
  cli,
  settings: TIMER_SETTINGS,
  read: () => void timerSourceFromEnv({ mode: 'interval', interval: '1s', topic: 't' }),
  help: [/mode +cron +cron \(schedule annotations\) or interval/],
  lookalikes: { Mode: 'mode', intervall: 'interval' },
});
