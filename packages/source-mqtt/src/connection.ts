import {
  Backoff,
  type BrokerError,
  type BrokerErrorRule,
  brokerError,
  errorMessage,
  HealthState,
  type Logger,
  SourceError,
  sleep,
} from '@connector/core';
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import { type ResolvedMqttOptions, redactUrl } from './options.js';

const MAX_SESSION_EXPIRY = 0xffff_ffff;

/**
 * mqtt.js errors → connector codes. CONNACK return codes (3.1.1) and reason codes (5), which mqtt.js gives as
 * numbers, are matched as strings; socket and TLS errors by their Node code. Anything else: ERR_BROKER, retryable.
 */
export const MQTT_ERRORS = [
  // 4/5: bad user name or password / not authorised (3.1.1); 134/135 the same, 138 banned, 140 bad auth method (5)
  { match: ['4', '5', '134', '135', '138', '140'], code: 'ERR_BROKER_AUTH', canRetry: false },
  // protocol version or client id refused: only a configuration change helps
  { match: ['1', '2', '132', '133'], code: 'ERR_BROKER', canRetry: false },
  // the broker's certificate is not trusted: fix the CA (ca_file) or the broker
  {
    match: [
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'SELF_SIGNED_CERT_IN_CHAIN',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
      'CERT_HAS_EXPIRED',
      'ERR_TLS_CERT_ALTNAME_INVALID',
    ],
    code: 'ERR_BROKER',
    canRetry: false,
  },
] as const satisfies readonly BrokerErrorRule[];

/** CONNACK codes of a broker that does not speak the protocol version asked for: 1 (MQTT 3.1.1), 132 (MQTT 5). */
const PROTOCOL_REFUSED = new Set(['1', '132']);

/** Whether a failed connect (a `BrokerError` of `connect`) is the broker refusing the protocol version. */
export function refusesProtocol(err: unknown): boolean {
  return PROTOCOL_REFUSED.has((err as BrokerError | undefined)?.brokerCode ?? '');
}

/** Normalise an mqtt.js error through `MQTT_ERRORS`; `what` says what was being done and where. */
export function mqttError(err: unknown, what: string): BrokerError {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'number') return brokerError(err, what, MQTT_ERRORS);
  const keyed = Object.assign(new Error(errorMessage(err), { cause: err }), { code: String(code) });
  return brokerError(keyed, what, MQTT_ERRORS);
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

const noop = (): void => undefined;

/** mqtt.js client options for the resolved options (connected later: `manualConnect`). */
export function clientOptions(o: ResolvedMqttOptions): IClientOptions {
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
    manualConnect: true,
    protocol: protocolOf(first) as NonNullable<IClientOptions['protocol']>,
    host: first.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: portOf(first),
  };
  // mqtt.js calls its `debug` logger ~20 times per message; disabled, that still costs ~4 µs a message. Keep it
  // only when someone asked for it (DEBUG=mqttjs*).
  if (!/mqttjs|(^|,)\*/.test(process.env['DEBUG'] ?? '')) copts.log = noop;
  if (first.protocol === 'ws:' || first.protocol === 'wss:') copts.path = `${first.pathname}${first.search}`;
  if (o.protocolVersion === 3) copts.protocolId = 'MQIsdp';
  const username = o.username ?? (first.username === '' ? undefined : decodeURIComponent(first.username));
  const password = o.password ?? (first.password === '' ? undefined : decodeURIComponent(first.password));
  if (username !== undefined) copts.username = username;
  if (password !== undefined) copts.password = password;
  if (o.protocolVersion === 5) {
    copts.properties = {
      receiveMaximum: o.receiveMaximum,
      // clean: false alone does not keep an MQTT 5 session: it must also outlive the connection
      sessionExpiryInterval: Math.min(MAX_SESSION_EXPIRY, Math.round(o.sessionExpiry / 1000)),
    };
  }
  if (o.tls) {
    const { ca, cert, key, rejectUnauthorized, servername } = o.tls;
    if (ca !== undefined) copts.ca = ca;
    if (cert !== undefined) copts.cert = cert;
    if (key !== undefined) copts.key = key;
    if (rejectUnauthorized !== undefined) copts.rejectUnauthorized = rejectUnauthorized;
    if (servername !== undefined) copts.servername = servername;
  }
  if (o.brokers.length > 1) {
    copts.servers = o.brokers.map((b) => ({
      host: b.hostname,
      port: portOf(b),
      protocol: protocolOf(b) as 'mqtt' | 'mqtts' | 'ws' | 'wss',
    }));
  }
  return copts;
}

/** Create the client (not connected yet: install the ack hooks, then `client.connect()`). */
export function createClient(o: ResolvedMqttOptions): MqttClient {
  return mqtt.connect(clientOptions(o));
}

/**
 * Connection state that outlives one client (a source restarted by the connector keeps its counters): health,
 * reconnects, whether the broker kept the session, and the failure log.
 */
export class ConnectionState {
  /** Connected and last error, for `health()`. */
  readonly health = new HealthState();
  /** Successful reconnects. */
  reconnects = 0;
  /** What the last CONNACK said. */
  sessionPresent: boolean | undefined;
  /** Failed attempts in a row with the same error (logged once). */
  failedAttempts = 0;
  private lastFailure: string | undefined;

  constructor(
    /** Where the source connects, for log lines (credentials removed). */
    readonly where: string,
  ) {}

  /**
   * Log a connection failure as one line (what, where, why, code), the stack at debug only; the same failure
   * again (each retry) is only counted, until the error changes or the connection is back.
   */
  failed(err: BrokerError, log: Logger): void {
    this.health.down(err);
    const key = `${err.code} ${err.message}`;
    if (key === this.lastFailure) {
      this.failedAttempts++;
      log.debug({ code: err.code, attempts: this.failedAttempts }, `${err.message} (again)`);
      return;
    }
    const previous = this.failedAttempts;
    this.lastFailure = key;
    this.failedAttempts = 1;
    log.warn(
      {
        code: err.code,
        canRetry: err.canRetry,
        ...(err.brokerCode === undefined ? {} : { brokerCode: err.brokerCode }),
        ...(previous > 1 ? { previousFailureRepeated: previous } : {}),
      },
      `MQTT ${err.message}`,
    );
    log.debug({ err: err.cause ?? err }, 'MQTT connection failure (stack)');
  }

  /** The connection is up: report how many attempts failed before, and start counting again. */
  up(log: Logger): void {
    this.health.up();
    if (this.lastFailure !== undefined)
      log.info({ failedAttempts: this.failedAttempts }, 'MQTT connection back after failed attempts');
    this.lastFailure = undefined;
    this.failedAttempts = 0;
  }
}

/** What the source tells `watchConnection` about itself. */
export interface ConnectionHooks {
  /** The source is stopping: a close is expected. */
  stopping(): boolean;
  /** A deliberate reconnect (redelivery) is under way: the close is expected. */
  reconnecting(): boolean;
  /** A successful CONNACK, before any message of the new connection is handled. */
  connack(packet: IConnackPacket): void;
}

/**
 * Follow the client's connection: health, back-off (`reconnectDelay`, doubling, reset on CONNACK), session-kept
 * warnings, and one log line per distinct failure.
 */
export function watchConnection(
  client: MqttClient,
  o: ResolvedMqttOptions,
  state: ConnectionState,
  log: Logger,
  hooks: ConnectionHooks,
): void {
  const backoff = new Backoff({ min: o.reconnectDelay.min, max: o.reconnectDelay.max, jitter: false });
  let connectedOnce = false;
  let up = false;
  client.on('packetreceive', (packet) => {
    if (packet.cmd !== 'connack') return;
    const rc = o.protocolVersion === 5 ? packet.reasonCode : packet.returnCode;
    if (rc !== 0) return; // the error event follows
    up = true;
    backoff.reset();
    client.options.reconnectPeriod = o.reconnectDelay.min;
    state.sessionPresent = packet.sessionPresent;
    if (connectedOnce) state.reconnects++;
    state.up(log);
    hooks.connack(packet);
    const lost = !o.clean && !packet.sessionPresent && connectedOnce;
    const detail = { broker: state.where, clientId: o.clientId, sessionPresent: packet.sessionPresent };
    if (lost)
      log.warn(
        detail,
        'reconnected, but the broker did not keep the session: messages sent meanwhile are lost',
      );
    else log.info(detail, 'connected to the MQTT broker');
    connectedOnce = true;
  });
  // before mqtt.js's own close listener, which schedules the reconnect with `reconnectPeriod`
  client.prependListener('close', () => {
    const wasUp = up;
    up = false;
    state.health.down();
    if (hooks.stopping()) return;
    const delay = Math.max(1, backoff.next());
    client.options.reconnectPeriod = delay;
    if (wasUp && !hooks.reconnecting())
      log.warn({ broker: state.where, retryIn: delay }, 'MQTT connection closed; reconnecting');
  });
  client.on('error', (err) => {
    if (!connectedOnce || hooks.stopping()) return; // start() reports what happens before the first CONNACK
    state.failed(mqttError(err, `connection to ${state.where} (client id ${o.clientId})`), log);
  });
}

/** Connect and wait for the first CONNACK; rejects with a BrokerError (or a SourceError when `signal` aborts). */
export async function connect(
  client: MqttClient,
  o: ResolvedMqttOptions,
  state: ConnectionState,
  signal: AbortSignal,
): Promise<void> {
  const timeout = new AbortController();
  try {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: unknown) => {
        client.off('connect', onConnect);
        client.off('error', done);
        signal.removeEventListener('abort', onAbort);
        timeout.abort();
        if (err === undefined) resolve();
        else reject(err);
      };
      const onConnect = () => done();
      const onAbort = () => done(new SourceError('mqtt source start aborted'));
      client.once('connect', onConnect);
      client.once('error', done);
      signal.addEventListener('abort', onAbort, { once: true });
      void sleep(o.connectTimeout + 1000, timeout.signal).then((expired) => {
        if (expired)
          done(Object.assign(new Error(`no CONNACK within ${o.connectTimeout} ms`), { code: 'ETIMEDOUT' }));
      });
      client.connect();
    });
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_SOURCE') throw err;
    const e = mqttError(err, `cannot connect to ${state.where} (client id ${o.clientId})`);
    state.health.down(e);
    throw e;
  }
}

/** End the client: gracefully (pending packets flushed) within 5 s, then forced. */
export async function endClient(client: MqttClient, force: boolean): Promise<void> {
  const timer = new AbortController();
  await Promise.race([client.endAsync(force).catch(() => undefined), sleep(5000, timer.signal)]);
  timer.abort();
  if (!client.disconnected) await client.endAsync(true).catch(() => undefined);
}

/** Broker URLs without credentials, for logs and health. */
export function brokerNames(o: ResolvedMqttOptions): string[] {
  return o.brokers.map((b) => redactUrl(b));
}
