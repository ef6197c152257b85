import {
  type DeliveryOutcome,
  defineSource,
  isShutdownError,
  type Logger,
  mqttMatch,
  type Source,
  type SourceContext,
  SourceError,
  type SourceHealth,
  type SourceMessage,
} from '@connector/core';
import mqtt, {
  type IClientOptions,
  type IClientPublishOptions,
  type IPublishPacket,
  type MqttClient,
} from 'mqtt';
import { reduceFilters } from './filters.js';
import { contentTypeOf, headersFromPacket } from './headers.js';
import {
  type MqttQos,
  type MqttSourceOptions,
  type ResolvedMqttOptions,
  redactUrl,
  resolveMqttOptions,
  topicFilterProblem,
} from './options.js';

/** The MQTT source: a `Source` plus a few read-only views for diagnostics and tests. */
export interface MqttSource extends Source {
  /** The resolved options (password omitted). */
  readonly options: Omit<ResolvedMqttOptions, 'password'>;
  /** Topic filters currently subscribed (with the `$share/<group>/` prefix when shared). */
  subscriptions(): readonly string[];
  /** Deliveries started and not yet settled. */
  pending(): number;
}

/** Passed to mqtt.js's `handleMessage` callback to move on to the next packet without acknowledging this one. */
const DEFER = new Error('acknowledgement deferred by @connector/source-mqtt');

const MAX_SESSION_EXPIRY = 0xffff_ffff;

interface Run {
  readonly ctx: SourceContext;
  readonly log: Logger;
  readonly client: MqttClient;
  /** Connection generation: bumped on every CONNACK and close, so acks never cross connections. */
  gen: number;
  stopping: boolean;
  /** While true, QoS 1/2 messages are neither delivered nor acked (they come back after the reconnect). */
  paused: boolean;
  pending: number;
  idleWaiters: (() => void)[];
  gateWaiters: (() => void)[];
  /** Subscribed filters (without the `$share/<group>/` prefix) and their MQTT 5 subscription identifiers. */
  subs: Map<string, { id: number | undefined; established: boolean }>;
  /** MQTT 5 with subscription identifiers: used to drop the extra copies of overlapping subscriptions. */
  useSubIds: boolean;
  syncChain: Promise<void>;
  offTopics: (() => void) | undefined;
  redeliveryTimer: NodeJS.Timeout | undefined;
  reconnectAttempt: number;
  connectedOnce: boolean;
}

/** Validate options and create an MQTT source (throws a one-line ConfigError on invalid options). */
export const mqttSource = defineSource<MqttSourceOptions, MqttSource>((options) => {
  const o = resolveMqttOptions(options);
  const v5 = o.protocolVersion === 5;
  // On MQTT 3.x mqtt.js sends PUBREC before the application sees a QoS 2 message, so QoS 2 could be lost in a
  // crash: subscribe with QoS 1 instead (at-least-once, PUBACK after delivery).
  const subQos: MqttQos = o.qos === 2 && !v5 ? 1 : o.qos;
  let run: Run | undefined;
  let lastError: string | undefined;
  let reconnects = 0;
  let sessionPresent: boolean | undefined;

  const brokerNames = o.brokers.map((b) => redactUrl(b));

  const clientOptions = (r: () => Run | undefined): IClientOptions => {
    const first = o.brokers[0] as URL;
    const copts: IClientOptions = {
      clientId: o.clientId,
      clean: o.clean,
      protocolVersion: o.protocolVersion,
      keepalive: Math.round(o.keepalive / 1000),
      connectTimeout: o.connectTimeout,
      reconnectPeriod: o.reconnectDelay.min,
      reconnectOnConnackError: true,
      resubscribe: true,
      queueQoSZero: false,
    };
    if (o.protocolVersion === 3) copts.protocolId = 'MQIsdp';
    const username = o.username ?? (first.username === '' ? undefined : decodeURIComponent(first.username));
    const password = o.password ?? (first.password === '' ? undefined : decodeURIComponent(first.password));
    if (username !== undefined) copts.username = username;
    if (password !== undefined) copts.password = password;
    if (v5) {
      copts.properties = {
        receiveMaximum: o.receiveMaximum,
        sessionExpiryInterval: Math.min(MAX_SESSION_EXPIRY, Math.round(o.sessionExpiry / 1000)),
      };
      copts.customHandleAcks = (_topic, _message, packet: IPublishPacket, done) => {
        if (packet.qos !== 2) {
          done(0);
          return;
        }
        const cur = r();
        if (!cur || cur.stopping || cur.paused) return; // never acked: the broker resends it on the next connection
        if (duplicate(cur, packet)) {
          done(0);
          return;
        }
        const gen = cur.gen;
        // QoS 2 on MQTT 5: PUBREC only after delivery. mqtt.js reads no further packet until `done` is called.
        track(
          cur,
          process(cur, packet).then((ack) => {
            if (ack && gen === cur.gen && cur.client.connected) done(0);
          }),
        );
      };
    }
    if (o.tls) {
      if (o.tls.ca !== undefined) copts.ca = o.tls.ca;
      if (o.tls.cert !== undefined) copts.cert = o.tls.cert;
      if (o.tls.key !== undefined) copts.key = o.tls.key;
      if (o.tls.rejectUnauthorized !== undefined) copts.rejectUnauthorized = o.tls.rejectUnauthorized;
      if (o.tls.servername !== undefined) copts.servername = o.tls.servername;
    }
    if (o.brokers.length > 1) {
      copts.servers = o.brokers.map((b) => ({
        host: b.hostname,
        port: portOf(b),
        protocol: protocolOf(b) as 'mqtt' | 'mqtts' | 'ws' | 'wss',
      }));
    }
    return copts;
  };

  const track = (r: Run, p: Promise<void>): void => {
    r.pending++;
    void p
      .catch((err: unknown) => r.log.error({ err }, 'mqtt message handling failed'))
      .finally(() => {
        r.pending--;
        const g = r.gateWaiters.shift();
        if (g) g();
        if (r.pending === 0) {
          const ws = r.idleWaiters;
          r.idleWaiters = [];
          for (const w of ws) w();
        }
      });
  };

  const idle = (r: Run): Promise<void> =>
    r.pending === 0 ? Promise.resolve() : new Promise((resolve) => r.idleWaiters.push(resolve));

  /** Let mqtt.js read the next packet now, or once fewer than `maxPending` deliveries are open. */
  const gate = (r: Run, next: () => void): void => {
    if (r.pending < o.maxPending || r.stopping) next();
    else r.gateWaiters.push(next);
  };

  const toMessage = (packet: IPublishPacket): SourceMessage => {
    let topic = packet.topic;
    if (o.trimChannelKey) {
      const slash = topic.indexOf('/');
      if (slash >= 0) topic = topic.slice(slash + 1);
    }
    const msg: {
      -readonly [K in keyof SourceMessage]: SourceMessage[K];
    } = {
      topic,
      body: typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload,
      headers: headersFromPacket(packet),
      orderingKey: topic,
    };
    if (packet.messageId !== undefined && packet.qos > 0) msg.id = String(packet.messageId);
    const ct = contentTypeOf(packet);
    if (ct !== undefined) msg.contentType = ct;
    return msg;
  };

  /** Deliver one message; resolves true when it may be acknowledged. */
  const process = async (r: Run, packet: IPublishPacket): Promise<boolean> => {
    let outcome: DeliveryOutcome;
    try {
      outcome = await r.ctx.deliver(toMessage(packet));
    } catch (err) {
      if (!isShutdownError(err)) {
        r.log.error(
          { err, topic: packet.topic },
          'delivery failed unexpectedly; message left for redelivery',
        );
        scheduleRedelivery(r);
      }
      return false;
    }
    if (!outcome.ack) {
      scheduleRedelivery(r);
      return false;
    }
    if (v5 && packet.properties?.responseTopic !== undefined) respond(r, packet, outcome);
    return true;
  };

  /** MQTT 5 request/response: publish the first function's response to the message's response topic. */
  const respond = (r: Run, packet: IPublishPacket, outcome: DeliveryOutcome): void => {
    const result = outcome.results[0];
    const responseTopic = packet.properties?.responseTopic;
    if (!result || responseTopic === undefined || responseTopic === '') return;
    const properties: NonNullable<IClientPublishOptions['properties']> = {
      userProperties: { 'X-Function': result.function, 'X-Function-Status': String(result.status) },
    };
    if (packet.properties?.correlationData !== undefined)
      properties.correlationData = packet.properties.correlationData;
    const ct = result.headers['content-type'];
    if (ct !== undefined && ct !== '') properties.contentType = ct;
    r.client.publish(
      responseTopic,
      Buffer.from(result.body),
      { qos: packet.qos === 0 ? 0 : 1, properties },
      (err) => {
        if (err) r.log.warn({ err, responseTopic }, 'could not publish the function response');
      },
    );
  };

  /** After a failed delivery: reconnect after `redeliveryDelay` so the broker redelivers what was not acked. */
  const scheduleRedelivery = (r: Run): void => {
    if (r.stopping || r.redeliveryTimer) return;
    if (o.clean) {
      r.log.warn('delivery failed on a clean session: the message is not acked and will not be redelivered');
    }
    r.redeliveryTimer = setTimeout(() => {
      r.paused = true;
      void idle(r).then(() => {
        r.redeliveryTimer = undefined;
        if (r.stopping) return;
        r.log.info('reconnecting so the broker redelivers unacknowledged messages');
        r.gen++;
        r.client.reconnect();
      });
    }, o.redeliveryDelay);
  };

  const handleMessage = (r: Run, packet: IPublishPacket, callback: (err?: Error) => void): void => {
    if (packet.qos !== 2 && duplicate(r, packet)) {
      callback(); // another copy of this message (overlapping subscription) is delivered; PUBACK this one now
      return;
    }
    if (packet.qos === 0) {
      if (!r.stopping)
        track(
          r,
          process(r, packet).then(() => undefined),
        );
      gate(r, () => callback());
      return;
    }
    if (packet.qos === 2 && v5) {
      callback(); // delivered before PUBREC (customHandleAcks); this is PUBREL: answer PUBCOMP
      return;
    }
    if (r.stopping || r.paused) {
      callback(DEFER); // not delivered, not acked: it comes back with the session
      return;
    }
    const gen = r.gen;
    if (packet.qos === 2) {
      // A QoS 2 message on MQTT 3.x (a subscription left in the session from an older configuration): PUBREC
      // went out on receipt; deliver at PUBREL and send PUBCOMP after delivery (one at a time).
      track(
        r,
        process(r, packet).then((ack) => {
          if (gen === r.gen) callback(ack ? undefined : DEFER);
        }),
      );
      return;
    }
    const messageId = packet.messageId;
    track(
      r,
      process(r, packet).then((ack) => {
        if (ack && messageId !== undefined) sendPuback(r, gen, messageId);
      }),
    );
    gate(r, () => callback(DEFER));
  };

  const sendPuback = (r: Run, gen: number, messageId: number): void => {
    // An ack for a message of an earlier connection would acknowledge a different message: drop it, the broker
    // redelivers the message on the new connection.
    if (gen !== r.gen || !r.client.connected) return;
    const packet = v5 ? { cmd: 'puback', messageId, reasonCode: 0 } : { cmd: 'puback', messageId };
    // mqtt.js has no public API to acknowledge later; _sendPacket is what its own handler calls.
    (r.client as unknown as { _sendPacket(p: object): void })._sendPacket(packet);
  };

  const filterFor = (topic: string): string =>
    o.sharedGroup === undefined ? topic : `$share/${o.sharedGroup}/${topic}`;

  const subscribeOptions = () =>
    v5 ? { qos: subQos, nl: o.sharedGroup === undefined, rh: 1 as const } : { qos: subQos };

  /** Bring the subscriptions in line with `topics` (serialised; errors are logged, never thrown). Filters another
   * one covers are not subscribed; new subscriptions are made before old ones are dropped, and a filter leaves
   * `r.subs` only at UNSUBACK, so the duplicate check never drops the only copy of a message. */
  const sync = (r: Run, topics: readonly string[]): Promise<void> => {
    r.syncChain = r.syncChain.then(async () => {
      if (r.stopping) return;
      const valid: string[] = [];
      for (const t of topics) {
        const problem = topicFilterProblem(t);
        if (problem)
          r.log.warn({ topic: t }, `not subscribing to an invalid topic filter: expected ${problem}`);
        else valid.push(t);
      }
      const want = new Set(reduceFilters(valid));
      const add = [...want].filter((t) => !r.subs.has(t));
      const remove = [...r.subs.keys()].filter((t) => !want.has(t));
      if (add.length > 0) {
        const withIds = r.useSubIds;
        const batches = withIds ? add.map((t) => [t]) : [add];
        const used = new Set([...r.subs.values()].map((x) => x.id));
        await Promise.all(
          batches.map(async (batch) => {
            // the same filter gets the same identifier in every run, so redelivered messages keep matching it
            let id = withIds ? subscriptionId(filterFor(batch[0] as string)) : undefined;
            if (id !== undefined && used.has(id)) id = undefined; // hash collision: no identifier, no dedup
            used.add(id);
            for (const t of batch) r.subs.set(t, { id, established: false });
            const map: Record<string, ReturnType<typeof subscribeOptions>> = {};
            for (const t of batch) map[filterFor(t)] = subscribeOptions();
            try {
              const granted = await r.client.subscribeAsync(
                map,
                id === undefined ? {} : { properties: { subscriptionIdentifier: id } },
              );
              for (const t of batch) {
                const sub = r.subs.get(t);
                if (sub) sub.established = true;
              }
              const refused = granted.filter((g) => g.qos > 2).map((g) => g.topic);
              if (refused.length > 0) {
                lastError = `subscription refused by the broker: ${refused.join(', ')}`;
                r.log.error({ filters: refused }, 'the broker refused these subscriptions (ACL?)');
              }
            } catch (err) {
              for (const t of batch) r.subs.delete(t);
              lastError = (err as Error).message;
              r.log.warn(
                { err, filters: batch.map(filterFor) },
                'subscribe failed; retrying on the next change',
              );
            }
          }),
        );
        r.log.info({ filters: add.map(filterFor), qos: subQos }, 'subscribed');
      }
      if (remove.length > 0 && !r.stopping) {
        const filters = remove.map(filterFor);
        try {
          await r.client.unsubscribeAsync(filters);
          r.log.info({ filters }, 'unsubscribed');
        } catch (err) {
          r.log.warn({ err, filters }, 'unsubscribe failed');
        }
        for (const t of remove) r.subs.delete(t);
      }
    });
    return r.syncChain;
  };

  /**
   * MQTT 5 brokers may send one copy of a message per matching subscription (mosquitto does): deliver only the copy
   * of the subscription with the lowest identifier among those acknowledged (SUBACK seen). A copy carrying an
   * identifier this run does not know (a subscription left in the persistent session by an earlier configuration)
   * is always delivered: at-least-once prefers a duplicate to a loss.
   */
  const duplicate = (r: Run, packet: IPublishPacket): boolean => {
    const raw = packet.properties?.subscriptionIdentifier;
    if (!r.useSubIds || raw === undefined) return false;
    const ids = Array.isArray(raw) ? raw : [raw];
    let lowest: number | undefined;
    const known = new Set<number>();
    for (const [filter, s] of r.subs) {
      if (s.id === undefined) continue;
      known.add(s.id);
      if (s.established && (lowest === undefined || s.id < lowest) && mqttMatch(filter, packet.topic))
        lowest = s.id;
    }
    if (lowest === undefined || ids.some((id) => !known.has(id))) return false;
    return !ids.includes(lowest);
  };

  const end = async (client: MqttClient, force: boolean): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      client.endAsync(force).catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 5000);
      }),
    ]);
    clearTimeout(timer);
    if (!client.disconnected) await client.endAsync(true).catch(() => undefined);
  };

  const source: MqttSource = {
    name: 'mqtt',
    options: (({ password: _p, ...rest }) => rest)(o),

    async start(ctx) {
      if (run) throw new SourceError('mqtt source already started');
      const log = ctx.logger;
      const url = o.brokers[0] as URL;
      const copts = clientOptions(() => run);
      copts.protocol = protocolOf(url) as IClientOptions['protocol'] & string;
      copts.host = url.hostname.replace(/^\[(.*)\]$/, '$1');
      copts.port = portOf(url);
      if (url.protocol === 'ws:' || url.protocol === 'wss:') copts.path = `${url.pathname}${url.search}`;
      const client = mqtt.connect(copts);
      const r: Run = {
        ctx,
        log,
        client,
        gen: 0,
        stopping: false,
        paused: false,
        pending: 0,
        idleWaiters: [],
        gateWaiters: [],
        subs: new Map(),
        useSubIds: v5,
        syncChain: Promise.resolve(),
        offTopics: undefined,
        redeliveryTimer: undefined,
        reconnectAttempt: 0,
        connectedOnce: false,
      };
      run = r;
      client.handleMessage = (packet, callback) => handleMessage(r, packet, callback);
      client.on('packetreceive', (packet) => {
        if (packet.cmd !== 'connack') return;
        r.gen++;
        const ok = (v5 ? packet.reasonCode : packet.returnCode) === 0;
        if (!ok) return;
        r.paused = false;
        r.reconnectAttempt = 0;
        if (v5 && packet.properties?.subscriptionIdentifiersAvailable === false) r.useSubIds = false;
        client.options.reconnectPeriod = o.reconnectDelay.min;
        sessionPresent = packet.sessionPresent;
        if (r.connectedOnce) reconnects++;
        const level = !o.clean && !packet.sessionPresent && r.connectedOnce ? 'warn' : 'info';
        log[level](
          { broker: brokerNames, clientId: o.clientId, sessionPresent: packet.sessionPresent },
          level === 'warn'
            ? 'reconnected, but the broker did not keep the session: messages sent meanwhile are lost'
            : 'connected to the MQTT broker',
        );
        r.connectedOnce = true;
        lastError = undefined;
      });
      client.prependListener('close', () => {
        r.gen++;
        if (r.stopping) return;
        const delay = Math.min(
          o.reconnectDelay.max,
          o.reconnectDelay.min * 2 ** Math.min(r.reconnectAttempt, 20),
        );
        r.reconnectAttempt++;
        client.options.reconnectPeriod = delay;
        if (r.connectedOnce && !r.paused)
          log.warn({ retryIn: delay }, 'MQTT connection closed; reconnecting');
      });
      client.on('error', (err) => {
        lastError = err.message;
        if (r.connectedOnce && !r.stopping) log.warn({ err: err.message }, 'MQTT client error');
      });

      try {
        await new Promise<void>((resolve, reject) => {
          const onConnect = () => {
            cleanup();
            resolve();
          };
          const onError = (err: Error) => {
            cleanup();
            reject(err);
          };
          const onAbort = () => {
            cleanup();
            reject(new SourceError('mqtt source start aborted'));
          };
          const timer = setTimeout(
            () => onError(new Error(`no CONNACK within ${o.connectTimeout} ms`)),
            o.connectTimeout + 1000,
          );
          const cleanup = () => {
            clearTimeout(timer);
            client.off('connect', onConnect);
            client.off('error', onError);
            ctx.signal.removeEventListener('abort', onAbort);
          };
          client.once('connect', onConnect);
          client.once('error', onError);
          ctx.signal.addEventListener('abort', onAbort, { once: true });
        });
      } catch (err) {
        r.stopping = true;
        run = undefined;
        await end(client, true);
        const message = (err as Error).message;
        lastError = message;
        throw new SourceError(`cannot connect to ${brokerNames.join(', ')}: ${message}`, { cause: err });
      }

      if (o.qos === 0) log.info('QoS 0: messages are not acknowledged and not redelivered');
      else if (o.clean) log.warn('clean session: messages not acked before a disconnect are not redelivered');
      if (o.qos === 2 && !v5)
        log.warn('QoS 2 on MQTT 3.x is subscribed as QoS 1 (at-least-once, acked after delivery)');

      if (o.topics !== undefined) await sync(r, o.topics);
      else {
        r.offTopics = ctx.onTopicsChange((topics) => void sync(r, topics));
        await sync(r, ctx.topics());
        if (ctx.topics().length === 0) log.warn('no function has a topic annotation yet: nothing subscribed');
      }
    },

    async stop() {
      const r = run;
      if (!r) return;
      r.stopping = true;
      r.offTopics?.();
      if (r.redeliveryTimer) clearTimeout(r.redeliveryTimer);
      const gates = r.gateWaiters;
      r.gateWaiters = [];
      for (const g of gates) g();
      // Deliveries settle (ack) or reject with ShutdownError (no ack) as the connector drains or aborts.
      await idle(r);
      await end(r.client, false);
      if (run === r) run = undefined;
      r.log.info('MQTT source stopped');
    },

    health(): SourceHealth {
      const r = run;
      const detail = {
        broker: brokerNames,
        clientId: o.clientId,
        protocolVersion: o.protocolVersion,
        qos: subQos,
        subscriptions: r ? [...r.subs.keys()].map(filterFor) : [],
        pending: r?.pending ?? 0,
        reconnects,
        sessionPresent,
      };
      const connected = r?.client.connected ?? false;
      return lastError === undefined ? { connected, detail } : { connected, lastError, detail };
    },

    subscriptions: () => (run ? [...run.subs.keys()].map(filterFor) : []),
    pending: () => run?.pending ?? 0,
  };
  return source;
});

/** A stable MQTT 5 subscription identifier (1 .. 268435455) for a filter: FNV-1a of its UTF-8 bytes. */
export function subscriptionId(filter: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(filter, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h % 268_435_455) + 1;
}

function protocolOf(u: URL): string {
  const p = u.protocol.slice(0, -1);
  return p === 'tls' ? 'mqtts' : p;
}

function portOf(u: URL): number {
  if (u.port !== '') return Number(u.port);
  switch (u.protocol) {
    case 'mqtts:':
    case 'ssl:':
    case 'tls:':
      return 8883;
    case 'ws:':
      return 80;
    case 'wss:':
      return 443;
    default:
      return 1883;
  }
}
