import { parseBool, parseDuration, type RetryOptions } from './config.js';
import type { FunctionInfo, Logger } from './types.js';

/** Our annotations' prefix (the `com.openfaas.*` names keep their OpenFaaS meaning). */
export const ANNOTATION_PREFIX = 'connector.dev/';

/** Every annotation the delivery policy reads, with what it takes. */
export const POLICY_ANNOTATIONS = {
  /** Attempts in all, the first included (OpenFaaS queue-worker meaning). */
  'com.openfaas.retry.attempts': 'an integer >= 1',
  /** Statuses that are retried, e.g. `429,502,503`. */
  'com.openfaas.retry.codes': 'HTTP status codes separated by commas or spaces',
  /** Back-off before the first retry (Go duration). */
  'com.openfaas.retry.min_wait': 'a duration like 500ms',
  /** Longest back-off (Go duration). */
  'com.openfaas.retry.max_wait': 'a duration like 30s',
  /** Invocations of this function in flight at most. */
  'connector.dev/max-inflight': 'an integer >= 1',
  /** What happens after the last attempt: `redeliver` or `dead-letter`. */
  'connector.dev/on-failure': 'redeliver or dead-letter',
  /** Deadline of one invocation (Go duration), instead of `upstream_timeout`. */
  'connector.dev/timeout': 'a duration like 10s',
  /** Older messages are dead-lettered without an invocation (Go duration). */
  'connector.dev/max-age': 'a duration like 1h',
  /** Adaptive concurrency: `true` or `false`. */
  'connector.dev/adaptive': 'true or false',
  /** Batch delivery: messages per invocation at most (absent or 1: one invocation per message). */
  'connector.dev/batch-size': 'an integer >= 1',
  /** Batch delivery: sum of the message bodies of one batch at most, in bytes (default 1 MiB). */
  'connector.dev/batch-bytes': 'an integer >= 1',
  /** Batch delivery: how long a batch's first message waits for others (Go duration, default 20ms). */
  'connector.dev/batch-window': 'a duration like 20ms',
} as const;

/** Default `connector.dev/batch-bytes`: 1 MiB. */
export const DEFAULT_BATCH_BYTES = 1024 * 1024;
/** Default `connector.dev/batch-window`: 20 ms. */
export const DEFAULT_BATCH_WINDOW = 20;

/** How a function takes its messages in batches (`connector.dev/batch-*`). */
export interface BatchPolicy {
  /** Messages per invocation at most (>= 2). */
  readonly size: number;
  /** Sum of the message bodies of one batch at most (a larger message goes alone). */
  readonly bytes: number;
  /** How long the first message of a batch waits for others, in ms. */
  readonly window: number;
}

/** How messages are delivered to one function: the connector's defaults, overridden by its annotations. */
export interface FunctionPolicy {
  readonly maxRetries: number;
  readonly minDelay: number;
  readonly maxDelay: number;
  readonly retryOn: ReadonlySet<number>;
  readonly maxInFlight: number | undefined;
  readonly onFailure: 'dead-letter' | 'redeliver';
  readonly timeout: number | undefined;
  readonly maxAge: number | undefined;
  readonly adaptive: boolean;
  /** Batch delivery, when the function asks for it; undefined: one invocation per message. */
  readonly batch: BatchPolicy | undefined;
}

/** The connector-wide defaults a function's annotations override. */
export interface PolicyDefaults {
  readonly retry: Required<RetryOptions>;
  readonly maxInFlightPerFunction: number | undefined;
  readonly onFailure: 'dead-letter' | 'redeliver';
  readonly adaptive: boolean;
}

type Parsed<T> = { ok: true; value: T } | { ok: false };
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad: Parsed<never> = { ok: false };

const positiveInt = (v: string): Parsed<number> =>
  /^\d+$/.test(v.trim()) && Number(v) >= 1 ? ok(Number(v)) : bad;
const duration = (v: string): Parsed<number> => {
  const ms = parseDuration(v);
  return ms === undefined || ms <= 0 ? bad : ok(ms);
};
const codes = (v: string): Parsed<ReadonlySet<number>> => {
  const parts = v.split(/[\s,]+/).filter((s) => s !== '');
  const nums = parts.map(Number);
  return parts.length > 0 && nums.every((n) => Number.isInteger(n) && n >= 100 && n <= 599)
    ? ok(new Set(nums))
    : bad;
};
const onFailure = (v: string): Parsed<'dead-letter' | 'redeliver'> => {
  const s = v.trim().toLowerCase();
  return s === 'dead-letter' || s === 'redeliver' ? ok(s) : bad;
};
const bool = (v: string): Parsed<boolean> => {
  const b = parseBool(v);
  return b === undefined ? bad : ok(b);
};

/**
 * Resolves each function's delivery policy from its annotations, once per topic-map entry (a rebuild that changes
 * a function's annotations makes a new entry, so a change applies without a restart). An invalid value is warned
 * about once per function and value; the default applies and delivery goes on.
 */
export class Policies {
  private readonly cache = new WeakMap<FunctionInfo, FunctionPolicy>();
  private readonly warned = new Set<string>();
  readonly defaults: FunctionPolicy;

  constructor(
    defaults: PolicyDefaults,
    private readonly log: Logger,
  ) {
    this.defaults = Object.freeze({
      maxRetries: defaults.retry.maxRetries,
      minDelay: defaults.retry.minDelay,
      maxDelay: defaults.retry.maxDelay,
      retryOn: new Set(defaults.retry.retryOnStatus),
      maxInFlight: defaults.maxInFlightPerFunction,
      onFailure: defaults.onFailure,
      timeout: undefined,
      maxAge: undefined,
      adaptive: defaults.adaptive,
      batch: undefined,
    });
  }

  /** The policy of a function (the defaults for a function named by address only). */
  of(fn: FunctionInfo | string): FunctionPolicy {
    if (typeof fn === 'string') return this.defaults;
    let p = this.cache.get(fn);
    if (p === undefined) {
      p = this.resolve(fn);
      this.cache.set(fn, p);
    }
    return p;
  }

  private resolve(fn: FunctionInfo): FunctionPolicy {
    const a = fn.annotations;
    const d = this.defaults;
    let any = false;
    for (const k in a) if (k in POLICY_ANNOTATIONS) any = true;
    if (!any) return d;
    /** The annotation's value, or undefined when absent or invalid (warned once). */
    const read = <T>(
      name: keyof typeof POLICY_ANNOTATIONS,
      parse: (v: string) => Parsed<T>,
    ): T | undefined => {
      const raw = a[name];
      if (raw === undefined) return undefined;
      const r = parse(raw);
      if (r.ok) return r.value;
      const key = `${fn.address}\u0000${name}\u0000${raw}`;
      if (!this.warned.has(key)) {
        this.warned.add(key);
        this.log.warn(
          {
            function: fn.address,
            annotation: name,
            value: raw.slice(0, 200),
            expected: POLICY_ANNOTATIONS[name],
          },
          'invalid annotation ignored; the default applies',
        );
      }
      return undefined;
    };
    const attempts = read('com.openfaas.retry.attempts', positiveInt);
    const minDelay = read('com.openfaas.retry.min_wait', duration) ?? d.minDelay;
    const batchSize = read('connector.dev/batch-size', positiveInt) ?? 1;
    // Read even without a batch size, so an invalid value is warned about either way.
    const batchBytes = read('connector.dev/batch-bytes', positiveInt) ?? DEFAULT_BATCH_BYTES;
    const batchWindow = read('connector.dev/batch-window', duration) ?? DEFAULT_BATCH_WINDOW;
    return Object.freeze({
      maxRetries: attempts === undefined ? d.maxRetries : attempts - 1,
      minDelay,
      maxDelay: Math.max(minDelay, read('com.openfaas.retry.max_wait', duration) ?? d.maxDelay),
      retryOn: read('com.openfaas.retry.codes', codes) ?? d.retryOn,
      maxInFlight: read('connector.dev/max-inflight', positiveInt) ?? d.maxInFlight,
      onFailure: read('connector.dev/on-failure', onFailure) ?? d.onFailure,
      timeout: read('connector.dev/timeout', duration) ?? d.timeout,
      maxAge: read('connector.dev/max-age', duration) ?? d.maxAge,
      adaptive: read('connector.dev/adaptive', bool) ?? d.adaptive,
      batch:
        batchSize > 1
          ? Object.freeze({ size: batchSize, bytes: batchBytes, window: batchWindow })
          : undefined,
    });
  }
}
