import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { GroupCoordinator, type GroupProtocol } from './group.js';
import { type PartitionLog, TopicLog, topicNameProblem } from './log.js';
import { ApiKey, ErrorCode, ProtocolError, Reader, SUPPORTED_VERSIONS, Writer } from './protocol.js';
import { decodeRecordBatch, type RecordHeader, readBatchHeader, SUPPORTED_CODECS } from './records.js';
import {
  SASL_MECHANISMS,
  SaslAuthenticationError,
  SaslAuthority,
  type SaslExchange,
  type SaslMechanismName,
  type SaslUser,
} from './sasl.js';

/** TLS listener settings of {@link startKafkaBroker} (PEM contents, as `node:tls` takes them). */
export interface KafkaBrokerTlsOptions {
  /** Server certificate chain, PEM. */
  cert: string | Buffer;
  /** Private key of `cert`, PEM. */
  key: string | Buffer;
  /** CA(s) that client certificates must chain to (with `requestCert`), PEM. */
  ca?: string | Buffer;
  /** Require a client certificate signed by `ca` (mutual TLS); a client without one is refused (default false). */
  requestCert?: boolean;
}

/** SASL settings of {@link startKafkaBroker}: every connection must authenticate as one of `users`. */
export interface KafkaBrokerSaslOptions {
  /** Accepted users; the enabled mechanisms are those at least one user may use. */
  users: readonly SaslUser[];
  /** SCRAM iteration count (default 4096, the least kafkajs accepts). */
  scramIterations?: number;
}

/** Options of {@link startKafkaBroker}. */
export interface KafkaBrokerOptions {
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** Interface to listen on and to advertise (default '127.0.0.1'). */
  host?: string;
  /**
   * The address Metadata and FindCoordinator give for this broker (default: where it listens), like Kafka's
   * `advertised.listeners`: set it to another address to play a cluster whose advertised listener is wrong.
   */
  advertised?: { host: string; port: number };
  /** Partitions of auto-created topics and of CreateTopics without a count (default 1). */
  partitions?: number;
  /** Create unknown topics named in a Metadata request (default true). */
  autoCreateTopics?: boolean;
  /** Node id of the single broker (default 0). */
  nodeId?: number;
  /** Smallest accepted consumer session timeout in ms (default 6000, as Kafka). */
  minSessionTimeout?: number;
  /** Largest accepted consumer session timeout in ms (default 1800000, as Kafka). */
  maxSessionTimeout?: number;
  /** Wait before the first rebalance of an empty group completes, in ms (default 0; Kafka uses 3000). */
  initialRebalanceDelay?: number;
  /** Receives one line per notable broker event (connection errors, malformed requests). */
  log?: (line: string) => void;
  /** Listen with TLS instead of plain TCP (`node:tls`); with `requestCert`, mutual TLS. */
  tls?: KafkaBrokerTlsOptions;
  /** Require SASL authentication (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) before any other request. */
  sasl?: KafkaBrokerSaslOptions;
}

/** A record as produced to the broker. */
export interface ProducedRecord {
  /** Partition index. */
  partition: number;
  /** Offset in that partition. */
  offset: number;
  /** Record key, null when absent. */
  key: Buffer | null;
  /** Record value, null for a tombstone. */
  value: Buffer | null;
  /** Headers in wire order. */
  headers: RecordHeader[];
  /** Create timestamp in ms. */
  timestamp: number;
  /** Compression codec of its batch as stored: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd. */
  codec: number;
}

/** A consumer group member as the coordinator sees it. */
export interface GroupMemberInfo {
  /** Member id given by the coordinator. */
  memberId: string;
  /** Client id from the request header. */
  clientId: string;
  /** Client address, '/127.0.0.1' style. */
  clientHost: string;
  /** Assigned partitions per topic (decoded ConsumerProtocol assignment; empty while rebalancing). */
  assignment: Record<string, number[]>;
}

/** A consumer group's coordinator state. */
export interface GroupInfo {
  /** Kafka state name. */
  state: 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable';
  /** Current generation. */
  generationId: number;
  /** Selected assignor protocol, null when empty. */
  protocol: string | null;
  /** Leader member id, null when none. */
  leaderId: string | null;
  /** Current members. */
  members: GroupMemberInfo[];
}

/** A running test broker. */
export interface KafkaTestBroker {
  /** Bootstrap list for kafkajs: ['127.0.0.1:PORT']. */
  readonly brokers: string[];
  /** Listening port (stays the same across {@link KafkaTestBroker.restart}). */
  readonly port: number;
  /** Listening and advertised host. */
  readonly host: string;
  /** Creates a topic; a no-op when it exists with the same partition count. */
  createTopic(name: string, partitions?: number): void;
  /** Deletes a topic with its log and committed offsets; false when unknown. */
  deleteTopic(name: string): boolean;
  /** Names of existing topics. */
  topics(): string[];
  /** Every record stored in a topic, ordered by partition then offset ([] for an unknown topic). */
  produced(topic: string): ProducedRecord[];
  /** Next offset per partition of a topic (the high watermark), [] for an unknown topic. */
  endOffsets(topic: string): number[];
  /** Committed offsets of a group: { topic: { partition: offset } }. */
  committed(group: string): Record<string, Record<number, number>>;
  /** Current members of a group ([] when unknown). */
  members(group: string): GroupMemberInfo[];
  /** Coordinator state of a group, undefined when unknown. */
  group(group: string): GroupInfo | undefined;
  /** Number of Fetch requests currently held waiting for data. */
  pendingFetches(): number;
  /** Simulates a crashed client: destroys its connections and refuses its requests until revived. */
  killClient(clientId: string): void;
  /** Lets a killed client id connect again. */
  reviveClient(clientId: string): void;
  /** Closes every connection and listens again on the same port; logs, groups and offsets stay. */
  restart(options?: { downtimeMs?: number }): Promise<void>;
  /** Stops the broker and frees the port. */
  close(): Promise<void>;
}

/** An invalid broker option; the message names the setting, the value and what was expected. */
export class BrokerConfigError extends Error {
  /** Stable machine-readable code. */
  readonly code = 'ERR_CONFIG';
  constructor(
    /** The option at fault. */
    readonly setting: string,
    message: string,
  ) {
    super(message);
    this.name = 'BrokerConfigError';
  }
}

/** A test-facing call on the broker that cannot be done (bad topic name, conflicting topic). */
export class BrokerError extends Error {
  /** Stable machine-readable code. */
  readonly code = 'ERR_BROKER';
  constructor(message: string) {
    super(message);
    this.name = 'BrokerError';
  }
}

const MAX_FRAME = 100 * 1024 * 1024;
const CLUSTER_ID = 'kafka-test-broker';

function intOption(name: string, value: unknown, def: number, min: number, max: number): number {
  if (value === undefined) return def;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new BrokerConfigError(
      name,
      `${name}: got ${JSON.stringify(value)}, expected an integer from ${min} to ${max}`,
    );
  }
  return value;
}

/** Starts a Kafka wire-protocol broker on loopback; resolves once it listens. */
export async function startKafkaBroker(options: KafkaBrokerOptions = {}): Promise<KafkaTestBroker> {
  const host = options.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host === '') {
    throw new BrokerConfigError(
      'host',
      `host: got ${JSON.stringify(host)}, expected a non-empty host name or IP`,
    );
  }
  if (options.autoCreateTopics !== undefined && typeof options.autoCreateTopics !== 'boolean') {
    throw new BrokerConfigError(
      'autoCreateTopics',
      `autoCreateTopics: got ${JSON.stringify(options.autoCreateTopics)}, expected true or false`,
    );
  }
  const minSessionTimeout = intOption('minSessionTimeout', options.minSessionTimeout, 6000, 1, 2 ** 31 - 1);
  const advertised = options.advertised;
  if (
    advertised !== undefined &&
    (typeof advertised.host !== 'string' ||
      advertised.host === '' ||
      !Number.isInteger(advertised.port) ||
      advertised.port < 1 ||
      advertised.port > 65535)
  )
    throw new BrokerConfigError(
      'advertised',
      `advertised: got ${JSON.stringify(advertised)}, expected { host, port } with a port in 1..65535`,
    );
  const settings: Settings = {
    host,
    port: intOption('port', options.port, 0, 0, 65535),
    advertised,
    partitions: intOption('partitions', options.partitions, 1, 1, 100_000),
    autoCreateTopics: options.autoCreateTopics ?? true,
    nodeId: intOption('nodeId', options.nodeId, 0, 0, 2 ** 31 - 1),
    minSessionTimeout,
    maxSessionTimeout: intOption(
      'maxSessionTimeout',
      options.maxSessionTimeout,
      1_800_000,
      minSessionTimeout,
      2 ** 31 - 1,
    ),
    initialRebalanceDelay: intOption(
      'initialRebalanceDelay',
      options.initialRebalanceDelay,
      0,
      0,
      2 ** 31 - 1,
    ),
    log: options.log ?? (() => {}),
    tls: tlsOption(options.tls),
    sasl: saslOption(options.sasl),
  };
  const broker = new Broker(settings);
  await broker.listen();
  return broker;
}

interface Settings {
  host: string;
  port: number;
  advertised: { host: string; port: number } | undefined;
  partitions: number;
  autoCreateTopics: boolean;
  nodeId: number;
  minSessionTimeout: number;
  maxSessionTimeout: number;
  initialRebalanceDelay: number;
  log: (line: string) => void;
  tls: KafkaBrokerTlsOptions | undefined;
  sasl: SaslAuthority | undefined;
}

const isPem = (v: unknown): v is string | Buffer =>
  (typeof v === 'string' || Buffer.isBuffer(v)) && v.length > 0;

function tlsOption(tls: KafkaBrokerTlsOptions | undefined): KafkaBrokerTlsOptions | undefined {
  if (tls === undefined) return undefined;
  if (typeof tls !== 'object' || tls === null)
    throw new BrokerConfigError('tls', 'tls: expected { cert, key, ca?, requestCert? }');
  for (const name of ['cert', 'key'] as const) {
    if (!isPem(tls[name]))
      throw new BrokerConfigError(
        `tls.${name}`,
        `tls.${name}: expected PEM contents (a non-empty string or Buffer)`,
      );
  }
  if (tls.ca !== undefined && !isPem(tls.ca))
    throw new BrokerConfigError('tls.ca', 'tls.ca: expected PEM contents (a non-empty string or Buffer)');
  if (tls.requestCert !== undefined && typeof tls.requestCert !== 'boolean') {
    throw new BrokerConfigError(
      'tls.requestCert',
      `tls.requestCert: got ${JSON.stringify(tls.requestCert)}, expected true or false`,
    );
  }
  if (tls.requestCert === true && tls.ca === undefined)
    throw new BrokerConfigError(
      'tls.ca',
      'tls.ca: required with tls.requestCert (the CA of client certificates)',
    );
  return tls;
}

function saslOption(sasl: KafkaBrokerSaslOptions | undefined): SaslAuthority | undefined {
  if (sasl === undefined) return undefined;
  if (!Array.isArray(sasl?.users) || sasl.users.length === 0)
    throw new BrokerConfigError(
      'sasl.users',
      'sasl.users: expected at least one { mechanism?, username, password }',
    );
  const iterations = intOption('sasl.scramIterations', sasl.scramIterations, 4096, 1, 1_000_000);
  const seen = new Set<string>();
  const users = sasl.users.map((u, i) => {
    const at = `sasl.users[${i}]`;
    if (typeof u?.username !== 'string' || u.username === '')
      throw new BrokerConfigError(`${at}.username`, `${at}.username: expected a non-empty string`);
    // Never echo a password, even a wrong-typed one.
    if (typeof u.password !== 'string')
      throw new BrokerConfigError(`${at}.password`, `${at}.password: expected a string`);
    let mechanism: SaslMechanismName | undefined;
    if (u.mechanism !== undefined) {
      const upper = typeof u.mechanism === 'string' ? u.mechanism.toUpperCase() : '';
      if (!(SASL_MECHANISMS as readonly string[]).includes(upper)) {
        throw new BrokerConfigError(
          `${at}.mechanism`,
          `${at}.mechanism: got ${JSON.stringify(u.mechanism)}, expected one of ${SASL_MECHANISMS.join(', ')}`,
        );
      }
      mechanism = upper as SaslMechanismName;
    }
    for (const m of mechanism === undefined ? SASL_MECHANISMS : [mechanism]) {
      const key = `${m}\u0000${u.username}`;
      if (seen.has(key))
        throw new BrokerConfigError(
          `${at}.username`,
          `${at}.username: ${JSON.stringify(u.username)} is given twice for ${m}`,
        );
      seen.add(key);
    }
    return { mechanism, username: u.username, password: u.password };
  });
  return new SaslAuthority(users, { iterations });
}

/** Requests a connection may send before it has authenticated (when SASL is on). */
const BEFORE_AUTH = new Set<number>([ApiKey.ApiVersions, ApiKey.SaslHandshake, ApiKey.SaslAuthenticate]);

type Handler = (r: Reader, version: number, conn: Connection) => Writer | null | Promise<Writer | null>;

/** One client TCP connection: frames in, requests handled strictly one at a time, like Kafka. */
class Connection {
  clientId: string | null = null;
  closed = false;
  /** SASL: the user this connection authenticated as (null until then). */
  principal: string | null = null;
  /** SASL: the exchange under way after a SaslHandshake. */
  sasl: { mechanism: string; exchange: SaslExchange } | null = null;
  /** Close the connection once the current response is written (a refused authentication, like Kafka). */
  closeAfterResponse = false;
  private pending: Buffer = Buffer.alloc(0);
  private readonly queue: Buffer[] = [];
  private busy = false;
  /** Cleanups to run when the connection closes (parked fetches). */
  readonly onClose = new Set<() => void>();

  constructor(
    readonly socket: Socket,
    private readonly broker: Broker,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => broker.settings.log(`connection error: ${err.message}`));
    socket.on('close', () => this.onSocketClose());
  }

  get remoteHost(): string {
    return `/${this.socket.remoteAddress ?? 'unknown'}`;
  }

  private onData(chunk: Buffer): void {
    if (this.closeAfterResponse) return;
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 4) {
      const size = this.pending.readInt32BE(0);
      if (size < 0 || size > MAX_FRAME) {
        this.broker.settings.log(`closing connection: invalid frame size ${size}`);
        this.destroy();
        return;
      }
      if (this.pending.length < 4 + size) break;
      this.queue.push(this.pending.subarray(4, 4 + size));
      this.pending = this.pending.subarray(4 + size);
    }
    this.pump();
  }

  private pump(): void {
    if (this.busy || this.closed) return;
    const frame = this.queue.shift();
    if (frame === undefined) return;
    this.busy = true;
    this.broker
      .handle(frame, this)
      .then((response) => {
        if (response !== null && !this.closed) this.socket.write(response);
        if (this.closeAfterResponse && !this.closed) {
          this.queue.length = 0;
          this.socket.end(() => this.destroy());
        }
      })
      .catch((err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        this.broker.settings.log(
          `closing connection: ${err instanceof ProtocolError ? 'malformed request: ' : ''}${message}`,
        );
        this.destroy();
      })
      .finally(() => {
        this.busy = false;
        this.pump();
      });
  }

  destroy(): void {
    this.socket.destroy();
    this.onSocketClose();
  }

  private onSocketClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    for (const cleanup of [...this.onClose]) cleanup();
    this.onClose.clear();
    this.broker.connectionClosed(this);
  }
}

interface FetchPartitionRequest {
  partition: number;
  fetchOffset: number;
  maxBytes: number;
}

interface FetchWaiter {
  keys: Set<string>;
  check: () => void;
}

const partitionKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

class Broker implements KafkaTestBroker {
  readonly topicLogs = new Map<string, TopicLog>();
  readonly coordinator: GroupCoordinator;
  private server: Server | null = null;
  private readonly connections = new Set<Connection>();
  private readonly waiters = new Set<FetchWaiter>();
  private readonly killed = new Set<string>();
  private readonly handlers: Map<number, Handler>;
  private closing = false;

  constructor(readonly settings: Settings) {
    this.coordinator = new GroupCoordinator({
      minSessionTimeout: settings.minSessionTimeout,
      maxSessionTimeout: settings.maxSessionTimeout,
      initialRebalanceDelay: settings.initialRebalanceDelay,
    });
    this.handlers = new Map<number, Handler>([
      [ApiKey.ApiVersions, (_r, v) => this.apiVersions(v, ErrorCode.NONE)],
      [ApiKey.Metadata, (r, v) => this.metadata(r, v)],
      [ApiKey.Produce, (r, v) => this.produce(r, v)],
      [ApiKey.Fetch, (r, v, c) => this.fetch(r, v, c)],
      [ApiKey.ListOffsets, (r, v) => this.listOffsets(r, v)],
      [ApiKey.FindCoordinator, (r, v) => this.findCoordinator(r, v)],
      [ApiKey.JoinGroup, (r, v, c) => this.joinGroup(r, v, c)],
      [ApiKey.SyncGroup, (r, v, c) => this.syncGroup(r, v, c)],
      [ApiKey.Heartbeat, (r, v) => this.heartbeat(r, v)],
      [ApiKey.LeaveGroup, (r, v) => this.leaveGroup(r, v)],
      [ApiKey.OffsetCommit, (r, v) => this.offsetCommit(r, v)],
      [ApiKey.OffsetFetch, (r, v) => this.offsetFetch(r, v)],
      [ApiKey.DescribeGroups, (r, v) => this.describeGroups(r, v)],
      [ApiKey.ListGroups, (_r, v) => this.listGroups(v)],
      [ApiKey.DeleteGroups, (r, v) => this.deleteGroups(r, v)],
      [ApiKey.CreateTopics, (r, v) => this.createTopics(r, v)],
      [ApiKey.DeleteTopics, (r, v) => this.deleteTopics(r, v)],
      [ApiKey.SaslHandshake, (r, _v, c) => this.saslHandshake(r, c)],
      [ApiKey.SaslAuthenticate, (r, v, c) => this.saslAuthenticate(r, v, c)],
    ]);
  }

  get host(): string {
    return this.settings.host;
  }

  get port(): number {
    return this.settings.port;
  }

  get brokers(): string[] {
    return [`${this.settings.host}:${this.settings.port}`];
  }

  listen(): Promise<void> {
    const accept = (socket: Socket) => {
      if (this.closing) {
        socket.destroy();
        return;
      }
      this.connections.add(new Connection(socket, this));
    };
    const tls = this.settings.tls;
    let server: Server;
    if (tls === undefined) server = createServer(accept);
    else {
      const requestCert = tls.requestCert ?? false;
      server = createTlsServer(
        {
          cert: tls.cert,
          key: tls.key,
          ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
          requestCert,
          rejectUnauthorized: requestCert,
        },
        accept,
      );
      server.on('tlsClientError', (err) => this.settings.log(`TLS handshake failed: ${err.message}`));
    }
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.settings.port, this.settings.host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.settings.log(`server error: ${err.message}`));
        const address = server.address();
        if (address !== null && typeof address === 'object') this.settings.port = address.port;
        resolve();
      });
    });
  }

  connectionClosed(conn: Connection): void {
    this.connections.delete(conn);
    this.coordinator.dropOwner(conn);
  }

  private async shutdownServer(): Promise<void> {
    const server = this.server;
    this.server = null;
    const closed =
      server === null ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()));
    for (const conn of [...this.connections]) conn.destroy();
    await closed;
  }

  async restart(options: { downtimeMs?: number } = {}): Promise<void> {
    await this.shutdownServer();
    this.coordinator.restart();
    const downtime = options.downtimeMs ?? 0;
    if (downtime > 0) await new Promise((resolve) => setTimeout(resolve, downtime));
    if (this.closing) return;
    await this.listen();
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.shutdownServer();
    this.coordinator.close();
  }

  // ---- test-facing API ----

  createTopic(name: string, partitions = this.settings.partitions): void {
    const problem = topicNameProblem(name);
    if (problem !== null) throw new BrokerError(`createTopic(${JSON.stringify(name)}): ${problem}`);
    if (!Number.isInteger(partitions) || partitions < 1) {
      throw new BrokerError(
        `createTopic(${JSON.stringify(name)}): partitions must be an integer >= 1, got ${partitions}`,
      );
    }
    const existing = this.topicLogs.get(name);
    if (existing !== undefined) {
      if (existing.partitions.length === partitions) return;
      throw new BrokerError(
        `createTopic(${JSON.stringify(name)}): exists with ${existing.partitions.length} partitions, not ${partitions}`,
      );
    }
    this.topicLogs.set(name, new TopicLog(name, partitions));
  }

  deleteTopic(name: string): boolean {
    if (!this.topicLogs.delete(name)) return false;
    this.coordinator.forgetTopic(name);
    for (const w of [...this.waiters]) {
      if ([...w.keys].some((k) => k.startsWith(`${name}\u0000`))) w.check();
    }
    return true;
  }

  topics(): string[] {
    return [...this.topicLogs.keys()];
  }

  produced(topic: string): ProducedRecord[] {
    const log = this.topicLogs.get(topic);
    if (log === undefined) return [];
    const out: ProducedRecord[] = [];
    log.partitions.forEach((p, partition) => {
      for (const b of p.batches) {
        const codec = (readBatchHeader(b.bytes, 0)?.attributes ?? 0) & 0x07;
        for (const r of decodeRecordBatch(b.bytes)) out.push({ partition, ...r, codec });
      }
    });
    return out;
  }

  endOffsets(topic: string): number[] {
    return this.topicLogs.get(topic)?.partitions.map((p) => p.nextOffset) ?? [];
  }

  committed(group: string): Record<string, Record<number, number>> {
    const out: Record<string, Record<number, number>> = {};
    const g = this.coordinator.groups.get(group);
    if (g === undefined) return out;
    for (const [topic, parts] of g.offsets) {
      const t: Record<number, number> = {};
      for (const [p, c] of parts) t[p] = c.offset;
      out[topic] = t;
    }
    return out;
  }

  members(group: string): GroupMemberInfo[] {
    return this.group(group)?.members ?? [];
  }

  group(group: string): GroupInfo | undefined {
    const g = this.coordinator.groups.get(group);
    if (g === undefined) return undefined;
    return {
      state: g.state,
      generationId: g.generationId,
      protocol: g.protocolName,
      leaderId: g.leaderId,
      members: [...g.members.values()].map((m) => ({
        memberId: m.memberId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        assignment: g.state === 'Stable' ? decodeAssignment(m.assignment) : {},
      })),
    };
  }

  pendingFetches(): number {
    return this.waiters.size;
  }

  killClient(clientId: string): void {
    this.killed.add(clientId);
    for (const conn of [...this.connections]) if (conn.clientId === clientId) conn.destroy();
  }

  reviveClient(clientId: string): void {
    this.killed.delete(clientId);
  }

  // ---- request dispatch ----

  async handle(frame: Buffer, conn: Connection): Promise<Buffer | null> {
    const r = new Reader(frame);
    const apiKey = r.int16();
    const version = r.int16();
    const correlationId = r.int32();
    const clientId = r.nullableString() ?? '';
    conn.clientId = clientId;
    if (this.killed.has(clientId)) {
      conn.destroy();
      return null;
    }
    if (this.settings.sasl !== undefined && conn.principal === null && !BEFORE_AUTH.has(apiKey)) {
      // Kafka closes a connection that sends anything else before authenticating.
      this.settings.log(`closing connection: API key ${apiKey} before SASL authentication`);
      conn.destroy();
      return null;
    }
    const range = SUPPORTED_VERSIONS.get(apiKey);
    const handler = this.handlers.get(apiKey);
    let body: Writer | null;
    if (range === undefined || handler === undefined || version < range[0] || version > range[1]) {
      // Kafka answers an unsupported ApiVersions with a v0 body listing what it supports.
      body =
        apiKey === ApiKey.ApiVersions
          ? this.apiVersions(0, ErrorCode.UNSUPPORTED_VERSION)
          : new Writer(8).int16(ErrorCode.UNSUPPORTED_VERSION);
    } else {
      body = await handler(r, version, conn);
    }
    if (body === null) return null;
    const payload = body.toBuffer();
    const out = Buffer.allocUnsafe(8 + payload.length);
    out.writeInt32BE(4 + payload.length, 0);
    out.writeInt32BE(correlationId, 4);
    payload.copy(out, 8);
    return out;
  }

  private apiVersions(version: number, errorCode: number): Writer {
    const w = new Writer();
    w.int16(errorCode);
    w.array([...SUPPORTED_VERSIONS], (w, [key, [min, max]]) => w.int16(key).int16(min).int16(max));
    if (version >= 1) w.int32(0);
    return w;
  }

  private saslHandshake(r: Reader, conn: Connection): Writer {
    const mechanism = r.string();
    const sasl = this.settings.sasl;
    const w = new Writer();
    const answer = (error: number) => w.int16(error).array(sasl?.mechanisms ?? [], (w, m) => w.string(m));
    if (sasl === undefined || conn.principal !== null || conn.sasl !== null) {
      conn.closeAfterResponse = sasl !== undefined;
      return answer(ErrorCode.ILLEGAL_SASL_STATE);
    }
    const exchange = sasl.start(mechanism);
    if (exchange === undefined) {
      this.settings.log(`closing connection: SASL mechanism ${JSON.stringify(mechanism)} not enabled`);
      conn.closeAfterResponse = true;
      return answer(ErrorCode.UNSUPPORTED_SASL_MECHANISM);
    }
    conn.sasl = { mechanism, exchange };
    return answer(ErrorCode.NONE);
  }

  private saslAuthenticate(r: Reader, v: number, conn: Connection): Writer {
    const token = r.bytes() ?? Buffer.alloc(0);
    const w = new Writer();
    const answer = (error: number, message: string | null, bytes: Buffer) => {
      w.int16(error).string(message).bytes(bytes);
      if (v >= 1) w.int64(0); // session lifetime: 0 = no re-authentication
      return w;
    };
    const current = conn.sasl;
    if (current === null) {
      conn.closeAfterResponse = true;
      return answer(ErrorCode.ILLEGAL_SASL_STATE, 'SaslAuthenticate before a SaslHandshake', Buffer.alloc(0));
    }
    try {
      const step = current.exchange.step(token);
      if (step.done) {
        conn.sasl = null;
        conn.principal = step.username ?? '';
      }
      return answer(ErrorCode.NONE, null, step.response);
    } catch (err) {
      if (!(err instanceof SaslAuthenticationError)) throw err;
      conn.sasl = null;
      conn.closeAfterResponse = true;
      this.settings.log(`closing connection: SASL ${current.mechanism} authentication failed`);
      return answer(ErrorCode.SASL_AUTHENTICATION_FAILED, err.message, Buffer.alloc(0));
    }
  }

  private ensureTopic(name: string, autoCreate: boolean): TopicLog | number {
    const existing = this.topicLogs.get(name);
    if (existing !== undefined) return existing;
    if (topicNameProblem(name) !== null) return ErrorCode.INVALID_TOPIC_EXCEPTION;
    if (!autoCreate || !this.settings.autoCreateTopics) return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
    const log = new TopicLog(name, this.settings.partitions);
    this.topicLogs.set(name, log);
    return log;
  }

  private partitionLog(topic: string, partition: number): PartitionLog | undefined {
    return this.topicLogs.get(topic)?.partitions[partition];
  }

  private metadata(r: Reader, v: number): Writer {
    const requested = r.array((r) => r.string());
    const allowAutoCreate = v >= 4 ? r.bool() : true;
    const names =
      requested === null || (v === 0 && requested.length === 0) ? [...this.topicLogs.keys()] : requested;
    const { nodeId } = this.settings;
    const { host, port } = this.advertisedAddress();
    const w = new Writer();
    if (v >= 3) w.int32(0);
    w.array([0], (w) => {
      w.int32(nodeId).string(host).int32(port);
      if (v >= 1) w.string(null);
    });
    if (v >= 2) w.string(CLUSTER_ID);
    if (v >= 1) w.int32(nodeId);
    w.array(names, (w, name) => {
      const topic = this.ensureTopic(name, allowAutoCreate);
      const error = typeof topic === 'number' ? topic : ErrorCode.NONE;
      w.int16(error).string(name);
      if (v >= 1) w.bool(false);
      const partitions = typeof topic === 'number' ? [] : topic.partitions.map((_, i) => i);
      w.array(partitions, (w, p) => {
        w.int16(ErrorCode.NONE).int32(p).int32(nodeId);
        w.array([nodeId], (w, n) => w.int32(n));
        w.array([nodeId], (w, n) => w.int32(n));
        if (v >= 5) w.array([], (w, n: number) => w.int32(n));
      });
    });
    return w;
  }

  private produce(r: Reader, v: number): Writer | null {
    r.nullableString(); // transactional id: transactions are not supported
    const acks = r.int16();
    r.int32(); // timeout: writes are synchronous
    const topics =
      r.array((r) => ({
        name: r.string(),
        partitions: r.array((r) => ({ partition: r.int32(), records: r.bytes() })) ?? [],
      })) ?? [];
    const results = topics.map(({ name, partitions }) => ({
      name,
      partitions: partitions.map(({ partition, records }) => {
        if (acks !== -1 && acks !== 0 && acks !== 1)
          return { partition, error: ErrorCode.INVALID_REQUIRED_ACKS, base: -1 };
        const log = this.partitionLog(name, partition);
        if (log === undefined) return { partition, error: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, base: -1 };
        const batches = validateBatches(records);
        if (typeof batches === 'number') return { partition, error: batches, base: -1 };
        let base = -1;
        for (const b of batches) {
          const offset = log.append(b.bytes, b.lastOffsetDelta, b.maxTimestamp);
          if (base < 0) base = offset;
        }
        this.notify(name, partition);
        return { partition, error: ErrorCode.NONE, base };
      }),
    }));
    if (acks === 0) return null;
    const w = new Writer();
    w.array(results, (w, t) => {
      w.string(t.name);
      w.array(t.partitions, (w, p) => {
        w.int32(p.partition).int16(p.error).int64(p.base).int64(-1);
        if (v >= 5) w.int64(0);
      });
    });
    w.int32(0);
    return w;
  }

  private notify(topic: string, partition: number): void {
    const key = partitionKey(topic, partition);
    for (const w of [...this.waiters]) if (w.keys.has(key)) w.check();
  }

  private fetch(r: Reader, v: number, conn: Connection): Writer | Promise<Writer> {
    r.int32(); // replica id
    const maxWait = r.int32();
    const minBytes = r.int32();
    const maxBytes = v >= 3 ? r.int32() : 0x7fffffff;
    if (v >= 4) r.int8(); // isolation level: no transactions, so LSO = HW either way
    let sessionId = 0;
    if (v >= 7) {
      sessionId = r.int32();
      r.int32(); // session epoch
    }
    const topics =
      r.array((r) => ({
        topic: r.string(),
        partitions:
          r.array((r): FetchPartitionRequest => {
            const partition = r.int32();
            if (v >= 9) r.int32(); // current leader epoch
            const fetchOffset = r.int64();
            if (v >= 5) r.int64(); // log start offset (followers only)
            return { partition, fetchOffset, maxBytes: r.int32() };
          }) ?? [],
      })) ?? [];
    // Forgotten topics (v7+) and rack id (v11) only matter with fetch sessions, which are not offered.

    const build = (): { writer: Writer; bytes: number; error: boolean } => {
      let bytes = 0;
      let error = false;
      const w = new Writer(1024);
      if (v >= 1) w.int32(0);
      if (v >= 7) {
        w.int16(sessionId === 0 ? ErrorCode.NONE : ErrorCode.FETCH_SESSION_ID_NOT_FOUND).int32(0);
        if (sessionId !== 0) error = true;
      }
      w.array(sessionId === 0 ? topics : [], (w, t) => {
        w.string(t.topic);
        w.array(t.partitions, (w, p) => {
          const log = this.partitionLog(t.topic, p.partition);
          let errorCode: number = ErrorCode.NONE;
          let batches: Buffer[] = [];
          if (log === undefined) errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
          else if (p.fetchOffset < log.logStartOffset || p.fetchOffset > log.nextOffset) {
            errorCode = ErrorCode.OFFSET_OUT_OF_RANGE;
          } else if (bytes < maxBytes || bytes === 0) {
            // Only the first data of a response may exceed the limits, so a big batch can always make progress.
            const budget = bytes === 0 ? p.maxBytes : Math.min(p.maxBytes, maxBytes - bytes);
            batches = log.read(p.fetchOffset, budget, bytes === 0);
          }
          if (errorCode !== ErrorCode.NONE) error = true;
          const hw = log?.nextOffset ?? -1;
          w.int32(p.partition).int16(errorCode).int64(hw);
          if (v >= 4) w.int64(hw); // last stable offset
          if (v >= 5) w.int64(log?.logStartOffset ?? -1);
          if (v >= 4) w.array([], () => {}); // aborted transactions
          if (v >= 11) w.int32(-1); // preferred read replica
          const size = batches.reduce((n, b) => n + b.length, 0);
          w.int32(size);
          for (const b of batches) w.raw(b);
          bytes += size;
        });
      });
      return { writer: w, bytes, error };
    };

    const first = build();
    if (first.error || first.bytes >= minBytes || maxWait <= 0 || conn.closed) return first.writer;

    return new Promise<Writer>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (writer: Writer) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        conn.onClose.delete(cancel);
        resolve(writer);
      };
      const cancel = () => finish(new Writer(0));
      const waiter: FetchWaiter = {
        keys: new Set(topics.flatMap((t) => t.partitions.map((p) => partitionKey(t.topic, p.partition)))),
        check: () => {
          const next = build();
          if (next.error || next.bytes >= minBytes) finish(next.writer);
        },
      };
      timer = setTimeout(() => finish(build().writer), maxWait);
      this.waiters.add(waiter);
      conn.onClose.add(cancel);
    });
  }

  private listOffsets(r: Reader, v: number): Writer {
    r.int32(); // replica id
    if (v >= 2) r.int8(); // isolation level
    const topics =
      r.array((r) => ({
        topic: r.string(),
        partitions:
          r.array((r) => {
            const partition = r.int32();
            const timestamp = r.int64();
            if (v === 0) r.int32(); // max number of offsets
            return { partition, timestamp };
          }) ?? [],
      })) ?? [];
    const w = new Writer();
    if (v >= 2) w.int32(0);
    w.array(topics, (w, t) => {
      w.string(t.topic);
      w.array(t.partitions, (w, p) => {
        const log = this.partitionLog(t.topic, p.partition);
        let errorCode: number = ErrorCode.NONE;
        let offset = -1;
        let timestamp = -1;
        if (log === undefined) errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        else if (p.timestamp === -1) offset = log.nextOffset;
        else if (p.timestamp === -2) offset = log.logStartOffset;
        else if (p.timestamp >= 0) {
          const found = log.offsetForTimestamp(p.timestamp);
          if (found !== null) ({ offset, timestamp } = found);
        } else errorCode = ErrorCode.INVALID_REQUEST;
        w.int32(p.partition).int16(errorCode);
        if (v === 0) w.array(offset >= 0 ? [offset] : [], (w, o) => w.int64(o));
        else w.int64(timestamp).int64(offset);
      });
    });
    return w;
  }

  private findCoordinator(r: Reader, v: number): Writer {
    r.string(); // group id / coordinator key
    if (v >= 1) r.int8(); // key type (group or transaction): this broker answers for both
    const w = new Writer();
    if (v >= 1) w.int32(0);
    w.int16(ErrorCode.NONE);
    if (v >= 1) w.string(null);
    const { host, port } = this.advertisedAddress();
    return w.int32(this.settings.nodeId).string(host).int32(port);
  }

  /** Where clients are told to find this broker. */
  private advertisedAddress(): { host: string; port: number } {
    return this.settings.advertised ?? { host: this.settings.host, port: this.settings.port };
  }

  private async joinGroup(r: Reader, v: number, conn: Connection): Promise<Writer> {
    const groupId = r.string();
    const sessionTimeout = r.int32();
    const rebalanceTimeout = v >= 1 ? r.int32() : sessionTimeout;
    const memberId = r.string();
    const groupInstanceId = v >= 5 ? r.nullableString() : null;
    const protocolType = r.string();
    const protocols: GroupProtocol[] =
      r.array((r) => ({ name: r.string(), metadata: r.bytes() ?? Buffer.alloc(0) })) ?? [];
    const res = await this.coordinator.join(
      {
        groupId,
        memberId,
        groupInstanceId,
        clientId: conn.clientId ?? '',
        clientHost: conn.remoteHost,
        sessionTimeout,
        rebalanceTimeout,
        protocolType,
        protocols,
        requireKnownMemberId: v >= 4,
      },
      conn,
    );
    const w = new Writer();
    if (v >= 2) w.int32(0);
    w.int16(res.errorCode)
      .int32(res.generationId)
      .string(res.protocolName)
      .string(res.leaderId)
      .string(res.memberId);
    w.array(res.members, (w, m) => {
      w.string(m.memberId);
      if (v >= 5) w.string(m.groupInstanceId);
      w.bytes(m.metadata);
    });
    return w;
  }

  private async syncGroup(r: Reader, v: number, conn: Connection): Promise<Writer> {
    const groupId = r.string();
    const generationId = r.int32();
    const memberId = r.string();
    if (v >= 3) r.nullableString(); // group instance id: static membership is not supported
    const assignments =
      r.array((r) => ({ memberId: r.string(), assignment: r.bytes() ?? Buffer.alloc(0) })) ?? [];
    const res = await this.coordinator.sync(groupId, generationId, memberId, assignments, conn);
    const w = new Writer();
    if (v >= 1) w.int32(0);
    return w.int16(res.errorCode).bytes(res.assignment);
  }

  private heartbeat(r: Reader, v: number): Writer {
    const groupId = r.string();
    const generationId = r.int32();
    const memberId = r.string();
    if (v >= 3) r.nullableString();
    const w = new Writer(8);
    if (v >= 1) w.int32(0);
    return w.int16(this.coordinator.heartbeat(groupId, generationId, memberId));
  }

  private leaveGroup(r: Reader, v: number): Writer {
    const groupId = r.string();
    const w = new Writer();
    if (v >= 1) w.int32(0);
    if (v < 3) return w.int16(this.coordinator.leave(groupId, r.string()));
    const members = r.array((r) => ({ memberId: r.string(), groupInstanceId: r.nullableString() })) ?? [];
    const results = members.map((m) => ({ ...m, error: this.coordinator.leave(groupId, m.memberId) }));
    w.int16(groupId === '' ? ErrorCode.INVALID_GROUP_ID : ErrorCode.NONE);
    w.array(results, (w, m) => w.string(m.memberId).string(m.groupInstanceId).int16(m.error));
    return w;
  }

  private offsetCommit(r: Reader, v: number): Writer {
    const groupId = r.string();
    const generationId = v >= 1 ? r.int32() : -1;
    const memberId = v >= 1 ? r.string() : '';
    if (v >= 2 && v <= 4) r.int64(); // retention time
    const topics =
      r.array((r) => ({
        topic: r.string(),
        partitions:
          r.array((r) => {
            const partition = r.int32();
            const offset = r.int64();
            if (v === 1) r.int64(); // commit timestamp
            return { partition, offset, metadata: r.nullableString() };
          }) ?? [],
      })) ?? [];
    const check = this.coordinator.checkCommit(groupId, generationId, memberId);
    const w = new Writer();
    if (v >= 3) w.int32(0);
    w.array(topics, (w, t) => {
      w.string(t.topic);
      w.array(t.partitions, (w, p) => {
        let error = check;
        if (error === ErrorCode.NONE && this.partitionLog(t.topic, p.partition) === undefined) {
          error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        }
        if (error === ErrorCode.NONE) {
          this.coordinator.storeOffset(groupId, t.topic, p.partition, {
            offset: p.offset,
            metadata: p.metadata,
          });
        }
        w.int32(p.partition).int16(error);
      });
    });
    return w;
  }

  private offsetFetch(r: Reader, v: number): Writer {
    const groupId = r.string();
    const requested = r.array((r) => ({ topic: r.string(), partitions: r.array((r) => r.int32()) ?? [] }));
    const group = this.coordinator.groups.get(groupId);
    const topics =
      requested ??
      [...(group?.offsets ?? new Map<string, Map<number, unknown>>())].map(([topic, parts]) => ({
        topic,
        partitions: [...parts.keys()],
      }));
    const w = new Writer();
    if (v >= 3) w.int32(0);
    w.array(topics, (w, t) => {
      w.string(t.topic);
      w.array(t.partitions, (w, p) => {
        const c = group?.offsets.get(t.topic)?.get(p);
        w.int32(p)
          .int64(c?.offset ?? -1)
          .string(c?.metadata ?? '')
          .int16(ErrorCode.NONE);
      });
    });
    if (v >= 2) w.int16(groupId === '' ? ErrorCode.INVALID_GROUP_ID : ErrorCode.NONE);
    return w;
  }

  private describeGroups(r: Reader, v: number): Writer {
    const ids = r.array((r) => r.string()) ?? [];
    const w = new Writer();
    if (v >= 1) w.int32(0);
    w.array(ids, (w, id) => {
      const g = this.coordinator.groups.get(id);
      if (g === undefined) {
        w.int16(ErrorCode.NONE).string(id).string('Dead').string('').string('');
        w.array([], () => {});
        return;
      }
      const stable = g.state === 'Stable';
      w.int16(ErrorCode.NONE)
        .string(id)
        .string(g.state)
        .string(g.protocolType ?? '');
      w.string(stable ? (g.protocolName ?? '') : '');
      w.array([...g.members.values()], (w, m) => {
        w.string(m.memberId).string(m.clientId).string(m.clientHost);
        w.bytes(stable ? m.metadataFor(g.protocolName ?? '') : Buffer.alloc(0));
        w.bytes(stable ? m.assignment : Buffer.alloc(0));
      });
    });
    return w;
  }

  private listGroups(v: number): Writer {
    const w = new Writer();
    if (v >= 1) w.int32(0);
    w.int16(ErrorCode.NONE);
    w.array([...this.coordinator.groups.values()], (w, g) => w.string(g.id).string(g.protocolType ?? ''));
    return w;
  }

  private deleteGroups(r: Reader, _v: number): Writer {
    const ids = r.array((r) => r.string()) ?? [];
    const w = new Writer();
    w.int32(0);
    w.array(ids, (w, id) => w.string(id).int16(this.coordinator.deleteGroup(id)));
    return w;
  }

  private createTopics(r: Reader, v: number): Writer {
    const topics =
      r.array((r) => ({
        name: r.string(),
        numPartitions: r.int32(),
        replicationFactor: r.int16(),
        assignments:
          r.array((r) => ({ partition: r.int32(), replicas: r.array((r) => r.int32()) ?? [] })) ?? [],
        configs: r.array((r) => ({ name: r.string(), value: r.nullableString() })) ?? [],
      })) ?? [];
    r.int32(); // timeout
    const validateOnly = v >= 1 ? r.bool() : false;
    const results = topics.map((t) => {
      const fail = (error: number, message: string) => ({
        name: t.name,
        error,
        message: message as string | null,
      });
      const problem = topicNameProblem(t.name);
      if (problem !== null) return fail(ErrorCode.INVALID_TOPIC_EXCEPTION, problem);
      if (this.topicLogs.has(t.name))
        return fail(ErrorCode.TOPIC_ALREADY_EXISTS, `Topic '${t.name}' already exists.`);
      let partitions = t.numPartitions === -1 ? this.settings.partitions : t.numPartitions;
      if (t.assignments.length > 0) {
        if (t.numPartitions !== -1 || t.replicationFactor !== -1) {
          return fail(
            ErrorCode.INVALID_REQUEST,
            'give either replica assignments or partitions/replication factor',
          );
        }
        const ok = t.assignments.every(
          (a, i) => a.partition === i && a.replicas.length === 1 && a.replicas[0] === this.settings.nodeId,
        );
        if (!ok)
          return fail(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `only broker ${this.settings.nodeId} exists`);
        partitions = t.assignments.length;
      }
      if (partitions < 1)
        return fail(ErrorCode.INVALID_PARTITIONS, 'Number of partitions must be larger than 0.');
      if (t.replicationFactor !== -1 && t.replicationFactor !== 1) {
        return fail(
          ErrorCode.INVALID_REPLICATION_FACTOR,
          `Replication factor: ${t.replicationFactor} larger than available brokers: 1.`,
        );
      }
      if (!validateOnly) this.topicLogs.set(t.name, new TopicLog(t.name, partitions));
      return { name: t.name, error: ErrorCode.NONE as number, message: null as string | null };
    });
    const w = new Writer();
    if (v >= 2) w.int32(0);
    w.array(results, (w, t) => {
      w.string(t.name).int16(t.error);
      if (v >= 1) w.string(t.message);
    });
    return w;
  }

  private deleteTopics(r: Reader, v: number): Writer {
    const names = r.array((r) => r.string()) ?? [];
    r.int32(); // timeout
    const w = new Writer();
    if (v >= 1) w.int32(0);
    w.array(names, (w, name) =>
      w.string(name).int16(this.deleteTopic(name) ? ErrorCode.NONE : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    );
    return w;
  }
}

interface ValidBatch {
  bytes: Buffer;
  lastOffsetDelta: number;
  maxTimestamp: number;
}

/** Splits a produced record set into batches and checks each; a Kafka error code when one is bad. */
function validateBatches(records: Buffer | null): ValidBatch[] | number {
  if (records === null || records.length === 0) return ErrorCode.CORRUPT_MESSAGE;
  const out: ValidBatch[] = [];
  let pos = 0;
  while (pos < records.length) {
    if (records.length - pos >= 17 && records.readInt8(pos + 16) !== 2)
      return ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT;
    const h = readBatchHeader(records, pos);
    if (h === null || !h.crcValid) return ErrorCode.CORRUPT_MESSAGE;
    if (!SUPPORTED_CODECS.has(h.attributes & 0x07)) return ErrorCode.UNSUPPORTED_COMPRESSION_TYPE;
    if (h.recordCount < 1 || h.lastOffsetDelta !== h.recordCount - 1) return ErrorCode.CORRUPT_MESSAGE;
    out.push({
      bytes: Buffer.from(records.subarray(pos, pos + h.size)),
      lastOffsetDelta: h.lastOffsetDelta,
      maxTimestamp: h.maxTimestamp,
    });
    pos += h.size;
  }
  return out;
}

/** Decodes a ConsumerProtocol assignment (version, [topic, [partition]], user data); {} if it is not one. */
function decodeAssignment(buf: Buffer): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  if (buf.length === 0) return out;
  try {
    const r = new Reader(buf);
    r.int16();
    for (const t of r.array((r) => ({ topic: r.string(), partitions: r.array((r) => r.int32()) ?? [] })) ??
      []) {
      out[t.topic] = t.partitions;
    }
  } catch {
    return {};
  }
  return out;
}
