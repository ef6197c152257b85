export {
  type CronSource,
  type CronSourceOptions,
  cronSource,
  type ScheduledFunction,
  scheduleProblem,
} from './cron.js';
export { type TimerEnvOptions, timerSourceFromEnv } from './env.js';
export { type IntervalSource, type IntervalSourceOptions, intervalSource } from './interval.js';
