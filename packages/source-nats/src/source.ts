import {
  defineSource,
  HealthState,
  InFlight,
  type Source,
  SourceError,
  type SourceHealth,
} from '@connector/core';
import type { NatsConnection } from '@nats-io/transport-node';
import { openConnection } from './connection.js';
import { type CoreNatsRun, startCoreNats } from './core-nats.js';
import { type JetStreamRun, startJetStream } from './jetstream.js';
import {
  type NatsSourceOptions,
  type ResolvedNatsOptions,
  redactServer,
  resolveNatsOptions,
} from './options.js';

/** The NATS source: a `Source` plus read-only views for diagnostics and tests. */
export interface NatsSource extends Source {
  /** The resolved options (credentials and TLS keys omitted). */
  readonly options: Omit<ResolvedNatsOptions, 'auth' | 'tls'>;
  /** Deliveries started and not yet settled (and acked). */
  pending(): number;
  /** Core mode: the subjects subscribed now (JetStream: empty). */
  subscriptions(): readonly string[];
}

interface Run {
  nc: NatsConnection;
  mode: JetStreamRun | CoreNatsRun | undefined;
}

/**
 * Validate options and create a NATS source (throws a one-line ConfigError on invalid options). JetStream mode (the
 * default) is at-least-once through a durable pull consumer; `mode: 'core'` is at-most-once.
 */
export const natsSource = defineSource<NatsSourceOptions, NatsSource>((options) => {
  const o = resolveNatsOptions(options);
  const health = new HealthState();
  const inflight = new InFlight();
  let run: Run | undefined;

  const source: NatsSource = {
    name: 'nats',
    options: (({ auth: _a, tls: _t, ...rest }) => rest)(o),

    // Outline: connect → bind/create stream + consumer and pull (JetStream) or subscribe (core) → deliver → settle.
    async start(ctx) {
      if (run) throw new SourceError('nats source already started');
      const nc = await openConnection(o, health, ctx.logger);
      const r: Run = { nc, mode: undefined };
      run = r;
      try {
        r.mode =
          o.mode === 'jetstream'
            ? await startJetStream(nc, o, ctx, health, inflight)
            : startCoreNats(nc, o, ctx, inflight);
      } catch (err) {
        run = undefined;
        health.down(err);
        await nc.close().catch(() => undefined);
        throw err;
      }
      if (o.mode === 'core') {
        // Started means subscribed at the server (a round trip), not only queued on this connection: a message
        // published after start() reaches us.
        await nc.flush();
        ctx.logger.info('core NATS mode: at-most-once (no acks, no redelivery)');
      }
    },

    // Outline: stop pulling/unsubscribe → wait for deliveries to settle and their acks → flush → close.
    async stop() {
      const r = run;
      if (!r) return;
      await r.mode?.stop();
      await inflight.idle();
      await r.nc.flush().catch(() => undefined);
      await r.nc.close().catch(() => undefined);
      if (run === r) run = undefined;
      health.down();
    },

    health(): SourceHealth {
      const r = run;
      const detail: Record<string, unknown> = {
        servers: o.servers.map(redactServer),
        mode: o.mode,
        pending: inflight.size,
      };
      if (r?.mode && 'detail' in r.mode) Object.assign(detail, r.mode.detail());
      if (r?.mode && 'subjects' in r.mode) detail['subjects'] = r.mode.subjects();
      return health.snapshot(detail);
    },

    async backlog() {
      const mode = run?.mode;
      if (!mode) throw new SourceError('nats source not running');
      if (!('backlog' in mode)) return []; // core NATS keeps nothing for later
      const b = await mode.backlog();
      if (!b) return [];
      const queue = `${o.stream}/${o.consumer}`;
      return [
        { queue, state: 'ready' as const, value: b.pending },
        { queue, state: 'unacked' as const, value: b.ackPending },
      ];
    },

    pending: () => inflight.size,
    subscriptions: () => (run?.mode && 'subjects' in run.mode ? run.mode.subjects() : []),
  };
  return source;
});
