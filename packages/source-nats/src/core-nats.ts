import { type InFlight, isShutdownError, type SourceContext } from '@connector/core';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { natsError } from './errors.js';
import { coreMessage } from './message.js';
import type { ResolvedNatsOptions } from './options.js';
import { respond } from './reply.js';
import { natsMatch, subjectCovers, subjectProblem } from './subjects.js';

/** A running core NATS subscriber. */
export interface CoreNatsRun {
  /** Unsubscribe; resolves once the subscriptions are closed (deliveries are awaited by the caller). */
  stop(): Promise<void>;
  /** Subjects subscribed now. */
  subjects(): readonly string[];
}

/** Drop subjects another one in the list covers (`a.*` under `a.>`), so a message arrives once per subscription set. */
export function reduceSubjects(subjects: readonly string[]): string[] {
  const uniq = [...new Set(subjects)].sort();
  return uniq.filter((s) => !uniq.some((o) => o !== s && subjectCovers(o, s)));
}

/**
 * Core NATS, at-most-once: subscribe (in the queue group, when set) and hand each message to the connector; nothing
 * is acknowledged and nothing redelivered. A message with a reply subject on the allow-list gets the first
 * function's response.
 */
export function startCoreNats(
  nc: NatsConnection,
  o: ResolvedNatsOptions,
  ctx: SourceContext,
  inflight: InFlight,
): CoreNatsRun {
  const log = ctx.logger;
  const subs = new Map<string, Subscription>();
  let stopping = false;

  const handle = (subject: string, m: Msg): void => {
    if (stopping) return;
    // Partially overlapping subscriptions (`a.*.c`, `a.b.*`) each get a copy: only the first matching one delivers.
    for (const s of subs.keys()) {
      if (natsMatch(s, m.subject)) {
        if (s !== subject) return;
        break;
      }
    }
    const p = ctx.deliver(coreMessage(m)).then(
      (outcome) => {
        if (m.reply) respond(nc, o, m.reply, outcome, log);
      },
      (err: unknown) => {
        if (!isShutdownError(err))
          log.error({ err, subject: m.subject }, 'delivery failed unexpectedly (core NATS: lost)');
      },
    );
    void inflight.track(p);
  };

  const sync = (wanted: readonly string[]): void => {
    if (stopping) return;
    const valid = wanted.filter((s) => {
      const problem = subjectProblem(s);
      if (problem) log.warn({ subject: s }, `not subscribing to an invalid subject: expected ${problem}`);
      return problem === undefined;
    });
    const want = new Set(reduceSubjects(valid));
    for (const [s, sub] of subs) {
      if (want.has(s)) continue;
      sub.unsubscribe();
      subs.delete(s);
      log.info({ subject: s }, 'unsubscribed');
    }
    const added: string[] = [];
    for (const s of [...want].sort()) {
      if (subs.has(s)) continue;
      try {
        const sub = nc.subscribe(s, {
          ...(o.queue === undefined ? {} : { queue: o.queue }),
          callback: (err, m) => {
            if (err) log.warn({ err: natsError(err, `subscription ${s}`).message }, 'subscription error');
            else handle(s, m);
          },
        });
        subs.set(s, sub);
        added.push(s);
      } catch (err) {
        log.warn({ err: natsError(err, `subscribe ${s}`).message }, 'subscribe failed');
      }
    }
    // Keep the map sorted so "first matching subscription" is the same for every message.
    const sorted = [...subs.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    subs.clear();
    for (const [k, v] of sorted) subs.set(k, v);
    if (added.length > 0)
      log.info({ subjects: added, queue: o.queue }, 'subscribed (core NATS, at-most-once)');
  };

  let offTopics: (() => void) | undefined;
  if (o.subjects !== undefined) sync(o.subjects);
  else {
    offTopics = ctx.onTopicsChange((topics) => sync(topics));
    sync(ctx.topics());
    if (subs.size === 0) log.warn('no function has a topic annotation yet: nothing subscribed');
  }

  return {
    async stop() {
      stopping = true;
      offTopics?.();
      for (const sub of subs.values()) sub.unsubscribe();
      await nc.flush().catch(() => undefined);
    },
    subjects: () => [...subs.keys()],
  };
}
