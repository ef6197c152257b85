import {
  ConfigError,
  defineSource,
  errorMessage,
  type FunctionInfo,
  InFlight,
  type Source,
  type SourceContext,
  settleDelivery,
} from '@connector/core';
import { Cron } from 'croner';

/** Options of `cronSource`. */
export interface CronSourceOptions {
  /** Topic that marks scheduled functions (default `cron-function`, as the OpenFaaS cron-connector). */
  topic?: string;
  /** Annotation holding the schedule (default `schedule`). */
  scheduleAnnotation?: string;
  /** IANA timezone of the schedules (default: the process's). */
  timezone?: string;
}

/** A scheduled function as the cron source tracks it. */
export interface ScheduledFunction {
  /** `name.namespace`. */
  readonly function: string;
  /** Its schedule annotation. */
  readonly schedule: string;
  /** Next run, if any. */
  readonly nextRun: Date | null;
}

/** The cron source: invokes each function annotated `topic: cron-function` on its `schedule`. */
export interface CronSource extends Source {
  /** Functions currently scheduled. */
  scheduled(): ScheduledFunction[];
}

/** Why a schedule is refused, or undefined when croner accepts it as a 5- or 6-field cron (or a @nickname). */
export function scheduleProblem(schedule: string, timezone?: string): string | undefined {
  const fields = schedule.trim().split(/\s+/);
  if (!schedule.trim().startsWith('@') && fields.length !== 5 && fields.length !== 6) {
    return `expected 5 fields (minute hour day month weekday) or 6 with seconds first, got ${fields.length}`;
  }
  try {
    new Cron(schedule, { paused: true, ...(timezone ? { timezone } : {}) }).stop();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Why `timezone` is refused, or undefined when it is an IANA zone this runtime knows. */
function timezoneProblem(timezone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
    return undefined;
  } catch {
    return 'expected an IANA timezone like Europe/Berlin';
  }
}

interface Job {
  schedule: string;
  cron: Cron;
  fn: FunctionInfo;
}

const EMPTY = new Uint8Array(0);

/**
 * Invoke every function subscribed to `cron-function` with a `schedule` annotation on that schedule, in its
 * namespace; functions appearing, disappearing or changing schedule are picked up at each topic-map rebuild. An
 * invalid schedule is logged once and skipped. A run whose previous run has not settled is skipped (no overlap).
 */
export const cronSource = defineSource((options: CronSourceOptions = {}): CronSource => {
  const topic = options.topic ?? 'cron-function';
  const annotation = options.scheduleAnnotation ?? 'schedule';
  for (const [setting, value] of [
    ['topic', topic],
    ['scheduleAnnotation', annotation],
  ] as const) {
    if (typeof value !== 'string' || value.trim() === '')
      throw ConfigError.invalid(setting, value, 'a non-empty string');
  }
  if (options.timezone !== undefined) {
    const problem = timezoneProblem(options.timezone);
    if (problem)
      throw new ConfigError('timezone', `invalid timezone=${JSON.stringify(options.timezone)}: ${problem}`);
  }
  const jobs = new Map<string, Job>();
  const warned = new Map<string, string>(); // function -> invalid schedule already reported
  const inflight = new InFlight();
  let ctx: SourceContext | undefined;
  let off: (() => void) | undefined;

  const run = (c: SourceContext, job: Job) => {
    const delivery = c.deliver({
      topic,
      body: EMPTY,
      functions: [job.fn.address],
      id: `${job.fn.address}@${new Date().toISOString()}`,
      headers: { 'X-Connector-Schedule': job.schedule },
    });
    const fail = (err: unknown) =>
      c.logger.error({ err: errorMessage(err), function: job.fn.address }, 'scheduled invocation failed');
    // A timer has no broker to redeliver: a 'nack' is reported, and the next run comes at its schedule.
    return inflight.track(
      settleDelivery(delivery, fail).then((decision) => {
        if (decision === 'nack') c.logger.warn({ function: job.fn.address }, 'scheduled invocation failed');
      }),
    );
  };

  const sync = (c: SourceContext, functions: readonly FunctionInfo[]) => {
    const wanted = new Map<string, FunctionInfo>();
    for (const fn of functions) if (fn.topics.includes(topic)) wanted.set(fn.address, fn);
    for (const address of warned.keys()) if (!wanted.has(address)) warned.delete(address);
    for (const [address, job] of jobs) {
      const fn = wanted.get(address);
      if (!fn || fn.annotations[annotation] !== job.schedule) {
        job.cron.stop();
        jobs.delete(address);
        c.logger.info({ function: address }, fn ? 'schedule changed' : 'function unscheduled');
      }
    }
    for (const [address, fn] of wanted) {
      if (jobs.has(address)) continue;
      const schedule = fn.annotations[annotation];
      if (schedule === undefined || schedule.trim() === '') {
        if (warned.get(address) !== '')
          c.logger.warn(
            { function: address },
            `subscribed to ${topic} without a ${annotation} annotation; skipped`,
          );
        warned.set(address, '');
        continue;
      }
      const problem = scheduleProblem(schedule, options.timezone);
      if (problem !== undefined) {
        if (warned.get(address) !== schedule)
          c.logger.warn({ function: address, schedule, problem }, 'invalid schedule; function skipped');
        warned.set(address, schedule);
        continue;
      }
      warned.delete(address);
      const job: Job = {
        schedule,
        fn,
        cron: new Cron(schedule, {
          protect: () => c.logger.debug({ function: address }, 'previous run still in flight; run skipped'),
          ...(options.timezone ? { timezone: options.timezone } : {}),
        }),
      };
      // croner's `protect` skips a run while the previous callback's promise is pending.
      job.cron.schedule(() => run(c, job));
      jobs.set(address, job);
      c.logger.info(
        { function: address, schedule, next: job.cron.nextRun()?.toISOString() },
        'function scheduled',
      );
    }
  };

  return {
    name: 'cron',
    async start(c) {
      ctx = c;
      off = c.onFunctionsChange((fns) => sync(c, fns));
      sync(c, c.functions());
    },
    async stop() {
      off?.();
      off = undefined;
      for (const job of jobs.values()) job.cron.stop();
      jobs.clear();
      await inflight.idle();
      ctx = undefined;
    },
    health: () => ({ connected: ctx !== undefined, detail: { scheduled: jobs.size } }),
    scheduled: () =>
      [...jobs.entries()].map(([address, j]) => ({
        function: address,
        schedule: j.schedule,
        nextRun: j.cron.nextRun(),
      })),
  };
});
