import {
  type AckDecision,
  ackDecision,
  type DeliveryOutcome,
  defineSource,
  InFlight,
  type Logger,
  rejectionDecision,
  type Source,
  type SourceContext,
  SourceError,
  type SourceHealth,
  sleep,
} from '@connector/core';
import type { IPublishPacket, MqttClient } from 'mqtt';
import { Acks, assertMqttInternals } from './acks.js';
import {
  brokerNames,
  ConnectionState,
  connect,
  createClient,
  endClient,
  refusesProtocol,
  watchConnection,
} from './connection.js';
import { toSourceMessage } from './message.js';
import {
  type MqttQos,
  type MqttSourceOptions,
  type ResolvedMqttOptions,
  resolveMqttOptions,
} from './options.js';
import { Replies } from './replies.js';
import { Subscriptions } from './subscriptions.js';

/** The MQTT source: a `Source` plus a few read-only views for diagnostics and tests. */
export interface MqttSource extends Source {
  /** The resolved options (password omitted). */
  readonly options: Omit<ResolvedMqttOptions, 'password'>;
  /** Topic filters currently subscribed (with the `$share/<group>/` prefix when shared). */
  subscriptions(): readonly string[];
  /** Deliveries started and not yet settled. */
  pending(): number;
  /** QoS 1 messages received on the current connection and not yet PUBACKed (at most `receiveMaximum`). */
  unacked(): number;
}

/** One start..stop of the source. */
interface Run {
  readonly ctx: SourceContext;
  readonly log: Logger;
  readonly client: MqttClient;
  readonly acks: Acks;
  readonly subs: Subscriptions;
  readonly inFlight: InFlight;
  /** Aborted by stop(): cancels the redelivery wait. */
  readonly stopped: AbortController;
  stopping: boolean;
  /** Waiting to reconnect for redelivery: QoS 1/2 messages are neither taken nor acked (they come back). */
  paused: boolean;
  redelivery: boolean;
  /** mqtt.js readers waiting for an open delivery to settle (`maxPending`). */
  readers: (() => void)[];
  /** The mqtt.js reader waiting for the connector's capacity. */
  waiting: (() => void) | undefined;
  offTopics: (() => void) | undefined;
}

/** What the protocol version decides for a source: MQTT 5 or 3.x, the QoS it subscribes with, its PUBACK batch. */
function protocolRules(o: ResolvedMqttOptions): { v5: boolean; subQos: MqttQos; ackBatch: number } {
  const v5 = o.protocolVersion === 5;
  return {
    v5,
    // On MQTT 3.x mqtt.js sends PUBREC before the application sees a QoS 2 message, so QoS 2 could be lost in a
    // crash: subscribe with QoS 1 instead (at-least-once, PUBACK after delivery).
    subQos: o.qos === 2 && !v5 ? 1 : o.qos,
    // PUBACKs that may wait for later ones (acks.ts): a quarter of the window (MQTT 5 receiveMaximum, which is the
    // source's own window on 3.x too, where mosquitto's default window is 20), so neither the broker nor the source
    // runs out of window because of them.
    ackBatch: Math.min(v5 ? 16 : 4, Math.max(1, Math.floor(o.receiveMaximum / 4))),
  };
}

/** Validate options and create an MQTT source (throws a one-line ConfigError on invalid options). */
export const mqttSource = defineSource<MqttSourceOptions, MqttSource>((options) => {
  let o = resolveMqttOptions(options);
  assertMqttInternals();
  // No protocol_version given: MQTT 5, or MQTT 3.1.1 once a broker refused 5 (see `start`).
  const protocolChosen = options.protocolVersion !== undefined;
  let p = protocolRules(o);
  const brokers = brokerNames(o);
  const state = new ConnectionState(brokers.join(', '));
  const replies = new Replies(o.responseTopics);
  const ordered = o.ordering === 'key';
  let run: Run | undefined;

  /**
   * Take a message from mqtt.js (see acks.ts): receive → deliver → settle (→ reply) → `settled(ack)`. False when it
   * is left for the next connection. One `then` per message on the delivery (the kit's ack rule applied inside it)
   * and counted, not tracked, in `inFlight`: this runs for every message.
   */
  const receive = (r: Run, packet: IPublishPacket, settled: (ack: boolean) => void): boolean => {
    if (r.stopping || (packet.qos > 0 && r.paused)) return false;
    r.inFlight.enter();
    if (r.subs.duplicate(packet)) {
      queueMicrotask(() => finish(r, settled, true)); // another copy of it is delivered
      return true;
    }
    let delivery: Promise<DeliveryOutcome>;
    try {
      delivery = r.ctx.deliver(toSourceMessage(packet, o.trimChannelKey, ordered));
    } catch (err) {
      r.log.error({ err, topic: packet.topic }, 'mqtt message handling failed');
      queueMicrotask(() => finish(r, settled, false));
      return true;
    }
    delivery.then(
      (outcome) => decided(r, packet, settled, ackDecision(outcome), outcome),
      (err: unknown) =>
        decided(
          r,
          packet,
          settled,
          rejectionDecision(err, (e) =>
            r.log.error(
              { err: e, topic: packet.topic },
              'delivery failed unexpectedly; message left for redelivery',
            ),
          ),
        ),
    );
    return true;
  };

  /** A delivery ended: reply (MQTT 5 request/response), redeliver later when it failed, then settle. */
  const decided = (
    r: Run,
    packet: IPublishPacket,
    settled: (ack: boolean) => void,
    decision: AckDecision,
    outcome?: DeliveryOutcome,
  ): void => {
    if (decision === 'ack') {
      let ack = true;
      if (p.v5 && outcome !== undefined && packet.properties?.responseTopic !== undefined) {
        try {
          replies.send(r.client, packet, outcome, r.log);
        } catch (err) {
          r.log.error({ err, topic: packet.topic }, 'mqtt message handling failed');
          ack = false;
        }
      }
      finish(r, settled, ack);
      return;
    }
    if (decision === 'nack' && packet.qos > 0) redeliverLater(r);
    finish(r, settled, false); // 'shutdown': the connector stopped first; the broker sends it again
  };

  /** Settle (the PUBACK is queued before `stop()` can see the source idle), then let a waiting reader on. */
  const finish = (r: Run, settled: (ack: boolean) => void, ack: boolean): void => {
    try {
      settled(ack);
    } finally {
      r.readers.shift()?.();
      r.inFlight.leave();
    }
  };

  /**
   * Back-pressure on a push broker: let mqtt.js read the next packet only while fewer than `maxPending` deliveries
   * are open and the connector has capacity; until then the socket is not read and the broker holds the messages.
   */
  const readNext = (r: Run, next: () => void): void => {
    if (r.stopping) next();
    else if (r.inFlight.size >= o.maxPending) r.readers.push(next);
    else if (r.ctx.hasCapacity()) next();
    else {
      // No abort signal: adding and removing a listener on it for every wait costs more than the wait. stop() lets
      // the waiting reader on itself; a late resolution then finds it gone.
      r.waiting = next;
      const again = () => {
        if (r.waiting !== next) return;
        r.waiting = undefined;
        readNext(r, next);
      };
      r.ctx.waitForCapacity().then(again, again);
    }
  };

  /**
   * MQTT has no negative ack: the broker resends an unacknowledged message only on a new connection. So after a
   * failed delivery, wait `redeliveryDelay`, stop taking QoS 1/2 messages, let open deliveries settle, reconnect.
   */
  const redeliverLater = (r: Run): void => {
    if (r.stopping || r.redelivery) return;
    r.redelivery = true;
    if (o.clean)
      r.log.warn('delivery failed on a clean session: the message is not acked and will not be redelivered');
    void (async () => {
      if (!(await sleep(o.redeliveryDelay, r.stopped.signal))) return;
      r.paused = true;
      await r.inFlight.idle();
      r.redelivery = false;
      if (r.stopping) return;
      r.log.info('reconnecting so the broker redelivers unacknowledged messages');
      r.acks.newConnection();
      r.client.reconnect();
    })();
  };

  const source: MqttSource = {
    name: 'mqtt',
    get options() {
      const { password: _p, ...rest } = o;
      return rest;
    },

    async start(ctx) {
      if (run) throw new SourceError('mqtt source already started');
      const log = ctx.logger;
      const client = createClient(o);
      const r: Run = {
        ctx,
        log,
        client,
        acks: new Acks(
          client,
          p.v5,
          {
            receive: (packet, settled) => receive(r, packet, settled),
            readNext: (next) => readNext(r, next),
          },
          p.ackBatch,
          o.receiveMaximum,
        ),
        subs: new Subscriptions(
          client,
          { v5: p.v5, qos: p.subQos, sharedGroup: o.sharedGroup },
          log,
          (err) => state.health.failed(err),
          () => r.stopping,
        ),
        inFlight: new InFlight(),
        stopped: new AbortController(),
        stopping: false,
        paused: false,
        redelivery: false,
        readers: [],
        waiting: undefined,
        offTopics: undefined,
      };
      run = r;
      watchConnection(client, o, state, log, {
        stopping: () => r.stopping,
        reconnecting: () => r.paused,
        connack: (packet) => {
          r.paused = false;
          r.subs.identifiersAvailable(packet.properties?.subscriptionIdentifiersAvailable);
        },
      });
      try {
        await connect(client, o, state, ctx.signal);
      } catch (err) {
        r.stopping = true;
        run = undefined;
        await endClient(client, true);
        if (protocolChosen || !p.v5 || !refusesProtocol(err)) throw err;
        log.warn(
          { broker: state.where },
          'the MQTT broker refused MQTT 5: connecting with MQTT 3.1.1 (set protocol_version=3.1.1 to start with it)',
        );
        o = { ...o, protocolVersion: 4 }; // from now on, for this source
        p = protocolRules(o);
        return source.start(ctx);
      }

      if (o.qos === 0) log.info('QoS 0: messages are not acknowledged and not redelivered');
      else if (o.clean) log.warn('clean session: messages not acked before a disconnect are not redelivered');
      if (o.qos === 2 && !p.v5)
        log.warn('QoS 2 on MQTT 3.x is subscribed as QoS 1 (at-least-once, acked after delivery)');

      if (o.topics !== undefined) await r.subs.sync(o.topics);
      else {
        r.offTopics = ctx.onTopicsChange((topics) => void r.subs.sync(topics));
        await r.subs.sync(ctx.topics());
        if (ctx.topics().length === 0) log.warn('no function has a topic annotation yet: nothing subscribed');
      }
    },

    async stop() {
      const r = run;
      if (!r) return;
      r.stopping = true;
      r.offTopics?.();
      r.stopped.abort();
      for (const next of r.readers.splice(0)) next();
      const waiting = r.waiting;
      r.waiting = undefined;
      waiting?.();
      // Deliveries settle (ack, in receive order) or reject with ShutdownError (no ack) as the connector drains.
      await r.inFlight.idle();
      await endClient(r.client, false);
      state.health.down();
      if (run === r) run = undefined;
      r.log.info('MQTT source stopped');
    },

    health(): SourceHealth {
      return state.health.snapshot({
        broker: brokers,
        clientId: o.clientId,
        protocolVersion: o.protocolVersion,
        qos: p.subQos,
        subscriptions: run ? run.subs.filters() : [],
        pending: run?.inFlight.size ?? 0,
        unacked: run?.acks.unacked ?? 0,
        reconnects: state.reconnects,
        sessionPresent: state.sessionPresent,
        ...(state.failedAttempts > 0 ? { failedAttempts: state.failedAttempts } : {}),
      });
    },

    subscriptions: () => (run ? run.subs.filters() : []),
    pending: () => run?.inFlight.size ?? 0,
    unacked: () => run?.acks.unacked ?? 0,
  };
  return source;
});
