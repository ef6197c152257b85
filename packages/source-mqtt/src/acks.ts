// The one file that relies on mqtt.js internals: the error argument of `handleMessage`'s callback (to skip mqtt.js's
// own PUBACK; `assertMqttInternals` checks it is still there, src/acks.test.ts fails loudly when not). The PUBACKs
// it sends itself, when deliveries settle, are written to the client's (public) `stream` as bytes: mqtt.js has no
// API for them, and its packet writer costs more per PUBACK than the rest of the message's handling here.
import { createRequire } from 'node:module';
import { SourceError } from '@connector/core';
import { type IClientOptions, type IPublishPacket, MqttClient } from 'mqtt';

/** Passed to mqtt.js's `handleMessage` callback: read the next packet without acknowledging this one. */
const DEFER = new Error('acknowledgement deferred by @connector/source-mqtt');

/** The mqtt.js version this package is tested with. */
export const TESTED_MQTT_VERSION = '5.16';

/** The internals used here, each with why. */
const INTERNALS = [
  [
    'handleMessage',
    2,
    'MqttClient.prototype.handleMessage(packet, callback), whose callback(err) skips the automatic PUBACK',
  ],
] as const;

function installedVersion(): string {
  try {
    return (createRequire(import.meta.url)('mqtt/package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * Throw a SourceError naming the mqtt.js internal that is gone (checked on `proto`, default the installed
 * `MqttClient.prototype`), so an mqtt.js upgrade fails at start instead of acking too early or never.
 */
export function assertMqttInternals(proto: object = MqttClient.prototype): void {
  const p = proto as Record<string, unknown>;
  for (const [name, minArgs, what] of INTERNALS) {
    const fn = p[name];
    if (typeof fn !== 'function' || fn.length < minArgs)
      throw new SourceError(
        `mqtt.js ${installedVersion()} no longer has ${what}: @connector/source-mqtt is tested with mqtt ` +
          `${TESTED_MQTT_VERSION}.x; install that version`,
      );
  }
}

/** What the source does with each message mqtt.js reads. */
export interface Receiver {
  /**
   * Take a message and call `settled` once, never synchronously: `true` to acknowledge it, `false` to leave it for
   * redelivery. Returns false when not taken (not delivered, not acknowledged: the broker sends it again on the
   * next connection); `settled` is then never called. (A callback, not a promise: one promise less per message.)
   */
  receive(packet: IPublishPacket, settled: (ack: boolean) => void): boolean;
  /** Call `next` when mqtt.js may read the next packet (back-pressure on open deliveries). */
  readNext(next: () => void): void;
}

const noop = (): void => undefined;

/** Longest time a settled message's PUBACK is held back to leave together with later ones (ms). */
export const ACK_DELAY = 5;

type AckHandler = NonNullable<IClientOptions['customHandleAcks']>;

interface Slot {
  readonly messageId: number;
  state: 'open' | 'ack' | 'skip';
}

/**
 * The PUBACKs of the acked slots among `slots`, in their order, as one write: 4 bytes each (MQTT 3.1.1 3.4; MQTT 5
 * 3.4.2.1: a remaining length of 2 is reason code 0, Success, without properties).
 */
function writePubacks(client: MqttClient, slots: readonly Slot[]): void {
  let k = 0;
  for (const slot of slots) if (slot.state === 'ack') k++;
  if (k === 0) return;
  const bytes = Buffer.allocUnsafe(4 * k);
  let at = 0;
  for (const slot of slots) {
    if (slot.state !== 'ack') continue;
    bytes[at] = 0x40;
    bytes[at + 1] = 2;
    bytes.writeUInt16BE(slot.messageId, at + 2);
    at += 4;
  }
  client.stream.write(bytes);
}

/**
 * Acknowledgements after delivery, in receive order (MQTT 4.6): QoS 1 messages are delivered concurrently, and a
 * PUBACK goes out once its message and every message received before it on this connection have settled (one that
 * is not acked leaves a gap). QoS 2 on MQTT 5 goes through mqtt.js's `customHandleAcks`, which reads no further
 * packet until PUBREC, so it is serial and in order by construction. Acks never cross a reconnect: the queue is
 * emptied on every CONNACK and close, since a packet id of the old connection names another message on the new one.
 */
export class Acks {
  private queue: Slot[] = [];
  /** Sends the PUBACKs held at the head of the queue (see `flush`). */
  private timer: NodeJS.Timeout | undefined;
  /** The reader of this connection, stopped because `window` messages await their PUBACK (see `handleMessage`). */
  private blocked: (() => void) | undefined;

  /**
   * Install the hooks on `client` (created with `manualConnect`, before it connects). `batch`: PUBACKs that may be
   * held back (at most `ACK_DELAY` ms) while later messages are still open, so that they leave in one write.
   * `window`: QoS 1 messages received and not yet PUBACKed at which the socket is no longer read (the source's own
   * receive maximum: a broker that sends past the window it was given is not read further until PUBACKs leave).
   */
  constructor(
    private readonly client: MqttClient,
    private readonly v5: boolean,
    private readonly receiver: Receiver,
    private readonly batch = 1,
    private readonly window = Number.POSITIVE_INFINITY,
  ) {
    assertMqttInternals(Object.getPrototypeOf(client) as object);
    client.handleMessage = (packet, callback) => this.handleMessage(packet, callback);
    // mqtt.js calls customHandleAcks only on MQTT 5 (it picks it at construction; the options object is read at
    // every PUBLISH): QoS 2 is delivered there, before PUBREC.
    if (v5) client.options.customHandleAcks = this.customHandleAcks;
    client.on('packetreceive', (packet) => {
      if (packet.cmd === 'connack') this.newConnection();
    });
    client.prependListener('close', () => this.newConnection());
  }

  /** Drop the acks of the current connection (call before a deliberate reconnect). */
  newConnection(): void {
    this.queue = [];
    clearTimeout(this.timer);
    this.timer = undefined;
    // The reader of a closed connection stays stopped: its parser's packets name messages of the old connection.
    this.blocked = undefined;
  }

  /** QoS 1 messages received on this connection whose PUBACK has not left (open, or settled and held). */
  get unacked(): number {
    return this.queue.length;
  }

  private readonly customHandleAcks: AckHandler = (_topic, _message, packet, done) => {
    if (packet.qos !== 2) {
      done(0); // QoS 1: on to handleMessage, which defers the PUBACK
      return;
    }
    const queue = this.queue;
    // Not taken, or not acked: no PUBREC, and mqtt.js reads nothing more on this connection until the source
    // reconnects (redelivery) or stops.
    this.receiver.receive(packet, (ack) => {
      if (ack && queue === this.queue && this.client.connected) done(0);
    });
  };

  private handleMessage(packet: IPublishPacket, callback: (err?: Error) => void): void {
    if (packet.qos === 0) {
      this.receiver.receive(packet, noop);
      this.receiver.readNext(() => callback());
      return;
    }
    if (packet.qos === 2) {
      if (this.v5) {
        callback(); // delivered before PUBREC (customHandleAcks); this is PUBREL: answer PUBCOMP
        return;
      }
      // MQTT 3.x sent PUBREC on receipt (a QoS 2 subscription left in the session by an older configuration):
      // deliver at PUBREL, and PUBCOMP after delivery, one at a time.
      const queue = this.queue;
      const taken = this.receiver.receive(packet, (ack) => {
        if (queue === this.queue) callback(ack ? undefined : DEFER);
      });
      if (!taken) callback(DEFER);
      return;
    }
    const messageId = packet.messageId;
    if (messageId === undefined) {
      // not a valid QoS 1 PUBLISH (mqtt-packet always reads an id): delivered, never acked
      this.receiver.receive(packet, noop);
      callback(DEFER);
      return;
    }
    const slot: Slot = { messageId, state: 'open' };
    const queue = this.queue;
    queue.push(slot);
    const taken = this.receiver.receive(packet, (ack) => {
      slot.state = ack ? 'ack' : 'skip';
      if (queue === this.queue) this.flush();
    });
    if (!taken) {
      queue.pop(); // not taken: it comes back with the session
      callback(DEFER);
      return;
    }
    const next = () => callback(DEFER);
    // The window is full: read nothing more until a PUBACK leaves (`send`). The broker keeps the rest.
    if (queue.length >= this.window) this.blocked = next;
    else this.receiver.readNext(next);
  }

  /**
   * Send the PUBACKs at the head of the queue whose messages have settled. Each PUBACK sent alone is one socket
   * write (a syscall, and a wake-up of the broker): while later messages are still open, fewer than `batch` ready
   * PUBACKs wait up to `ACK_DELAY` ms for more, then leave together (mqtt-packet corks the socket until the next
   * tick). Nothing open behind them (idle, draining, stopping): they leave at once.
   *
   * A full window (reader stopped) waits too: the open messages behind (at least `window - batch`) keep the
   * connector busy meanwhile, and a PUBACK per settled message would let the broker's PUBLISHes in one at a time,
   * a write and a read per message (on one ordered topic the window is full all the time).
   */
  private flush(): void {
    const n = this.settledHead();
    if (n === 0) return;
    if (n < this.queue.length && n < this.batch) {
      if (this.timer === undefined) {
        this.timer = setTimeout(this.sendHeld, ACK_DELAY);
        this.timer.unref();
      }
      return;
    }
    this.send(n);
  }

  private readonly sendHeld = (): void => {
    this.timer = undefined;
    const n = this.settledHead();
    if (n > 0) this.send(n);
  };

  /** How many slots at the head of the queue have settled. */
  private settledHead(): number {
    let n = 0;
    while (n < this.queue.length && (this.queue[n] as Slot).state !== 'open') n++;
    return n;
  }

  private send(n: number): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const done = this.queue.splice(0, n);
    // Not connected: the id would mean another message on the next connection.
    if (this.client.connected) writePubacks(this.client, done);
    const blocked = this.blocked;
    if (blocked !== undefined && this.queue.length < this.window) {
      this.blocked = undefined;
      this.receiver.readNext(blocked); // room in the window again: read the next packet
    }
  }
}
