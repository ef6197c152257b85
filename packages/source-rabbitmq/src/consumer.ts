import { isIP } from 'node:net';
import { TurnBatch } from '@connector/core';
import amqp, { type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Options } from 'amqplib';
import { AckPlan } from './acks.js';
import { amqpError } from './errors.js';
import type { ResolvedQueue, ResolvedRabbitmqOptions } from './options.js';

/** What a session tells its owner. */
export interface SessionEvents {
  /** A message arrived on `queue`; ack or nack it through this session only. */
  message(session: Session, queue: ResolvedQueue, msg: ConsumeMessage): void;
  /** The connection or the channel closed (`err` when it was not our own close); the session is dead. */
  closed(session: Session, err: unknown): void;
  /** `sent` queued acks reached the channel; `lost` did not (it closed first: the broker requeued them). */
  acksFlushed(sent: number, lost: number): void;
}

/**
 * One connection and its consuming channel. Delivery tags belong to the channel they came on: a message is acked
 * or nacked through the session it arrived on and never once that session closed (the broker has requeued it;
 * the same tag number on a newer channel is a different message).
 */
export class Session {
  /** False once the connection or channel closed, for whatever reason. */
  private isOpen = true;
  private readonly consumerTags: string[] = [];
  /** Which acks of a turn go as one cumulative ack. */
  private readonly ackPlan = new AckPlan();
  /** The acks of one event-loop turn, sent together (amqplib writes every frame to the socket on its own). */
  private readonly acks = new TurnBatch<ConsumeMessage>((msgs) => this.sendAcks(msgs));

  private constructor(
    readonly connection: ChannelModel,
    readonly channel: ConfirmChannel,
    private readonly events: SessionEvents,
  ) {}

  /** Connect, open a confirm channel; `events.closed` fires once when either goes away. */
  static async open(o: ResolvedRabbitmqOptions, events: SessionEvents): Promise<Session> {
    let connection: ChannelModel;
    try {
      connection = await amqp.connect(connectOptions(o), socketOptions(o));
    } catch (err) {
      throw amqpError(err, `connecting to ${o.url.host}`);
    }
    let session: Session | undefined;
    let closeError: unknown;
    const closed = (err?: unknown) => {
      if (err !== undefined && closeError === undefined) closeError = err;
      if (!session?.isOpen) return;
      session.isOpen = false;
      events.closed(session, closeError);
    };
    connection.on('error', (err: unknown) => {
      closeError ??= err;
    });
    connection.on('close', (err?: unknown) => closed(err));
    let channel: ConfirmChannel;
    try {
      channel = await connection.createConfirmChannel();
    } catch (err) {
      await connection.close().catch(() => undefined);
      throw amqpError(err, 'opening a channel');
    }
    session = new Session(connection, channel, events);
    channel.on('error', (err: unknown) => {
      closeError ??= err;
    });
    channel.on('close', () => {
      closed();
      // one channel per connection: a dead channel (a channel error, a cancelled consumer) ends the connection too
      connection.close().catch(() => undefined);
    });
    return session;
  }

  /** Still usable: neither the connection nor the channel closed. */
  get open(): boolean {
    return this.isOpen;
  }

  /** Set the prefetch window and consume every queue; `events.message` gets each message. */
  async consume(o: ResolvedRabbitmqOptions, events: SessionEvents): Promise<void> {
    await this.channel.prefetch(o.prefetch, false);
    for (const queue of o.queues) {
      const reply = await this.channel.consume(
        queue.name,
        (msg) => {
          if (msg === null) {
            // the broker cancelled the consumer (queue deleted, node down): drop the connection; its close is
            // reported like any other loss, so the owner reconnects and declares the queue again
            this.connection.close().catch(() => undefined);
            return;
          }
          events.message(this, queue, msg);
        },
        { noAck: false },
      );
      this.consumerTags.push(reply.consumerTag);
    }
  }

  /** Ack `msg` with the other acks of this turn (see `AckPlan`); false (and nothing sent) when the session is
   * closed: the broker already requeued it. */
  ack(msg: ConsumeMessage): boolean {
    if (!this.isOpen) return false;
    void this.acks.add(msg);
    return true;
  }

  /** Nack `msg` (requeue or dead-letter) at once; false when the session is closed. */
  nack(msg: ConsumeMessage, requeue: boolean): boolean {
    if (!this.isOpen) return false;
    try {
      this.channel.nack(msg, false, requeue);
      this.ackPlan.settle(msg.fields.deliveryTag);
      return true;
    } catch {
      return false; // closed between the check and the call
    }
  }

  private sendAcks(msgs: ConsumeMessage[]): void {
    if (!this.isOpen) {
      this.events.acksFlushed(0, msgs.length); // the channel closed first: the broker has requeued them
      return;
    }
    const byTag = new Map<number, ConsumeMessage>();
    for (const m of msgs) byTag.set(m.fields.deliveryTag, m);
    const { upTo, singles } = this.ackPlan.plan([...byTag.keys()]);
    try {
      if (upTo !== undefined) this.channel.ack(byTag.get(upTo) as ConsumeMessage, true);
      for (const tag of singles) this.channel.ack(byTag.get(tag) as ConsumeMessage, false);
      this.events.acksFlushed(msgs.length, 0);
    } catch {
      // closed meanwhile: whatever was not acked goes back to the queue
      this.events.acksFlushed(0, msgs.length);
    }
  }

  /** Publish to the default exchange (a reply) and wait for the broker's confirm. */
  publishToQueue(queue: string, body: Buffer, options: Options.Publish): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.isOpen) {
        reject(new Error('channel closed'));
        return;
      }
      try {
        this.channel.sendToQueue(queue, body, options, (err: unknown) => (err ? reject(err) : resolve()));
      } catch (err) {
        reject(err);
      }
    });
  }

  /** Stop the consumers (no new messages; those in flight stay ours until acked or the channel closes). */
  async cancel(): Promise<void> {
    const tags = this.consumerTags.splice(0);
    for (const tag of tags) if (this.isOpen) await this.channel.cancel(tag).catch(() => undefined);
  }

  /** Close channel and connection; every message not acked yet goes back to its queue. */
  async close(): Promise<void> {
    if (!this.isOpen) {
      await this.connection.close().catch(() => undefined);
      return;
    }
    this.acks.flushNow(); // acks still queued for this turn leave before the close (which would requeue them)
    this.isOpen = false;
    await this.channel.close().catch(() => undefined);
    await this.connection.close().catch(() => undefined);
  }
}

function connectOptions(o: ResolvedRabbitmqOptions): Options.Connect {
  const host = o.url.hostname.replace(/^\[(.*)\]$/, '$1');
  const secure = o.url.protocol === 'amqps:';
  return {
    protocol: secure ? 'amqps' : 'amqp',
    hostname: host,
    port: o.url.port === '' ? (secure ? 5671 : 5672) : Number(o.url.port),
    username: o.username,
    password: o.password,
    vhost: o.vhost,
    heartbeat: Math.round(o.heartbeat / 1000),
  };
}

function socketOptions(o: ResolvedRabbitmqOptions): Record<string, unknown> {
  const s: Record<string, unknown> = {
    timeout: o.connectTimeout,
    noDelay: true,
    clientProperties: { connection_name: o.connectionName, product: '@connector/source-rabbitmq' },
  };
  const tls = o.tls;
  if (tls) {
    if (tls.ca !== undefined) s['ca'] = tls.ca;
    if (tls.cert !== undefined) s['cert'] = tls.cert;
    if (tls.key !== undefined) s['key'] = tls.key;
    if (tls.rejectUnauthorized !== undefined) s['rejectUnauthorized'] = tls.rejectUnauthorized;
    if (tls.servername !== undefined) s['servername'] = tls.servername;
  }
  if (s['servername'] === undefined && isIP(o.url.hostname.replace(/^\[(.*)\]$/, '$1')) === 0)
    s['servername'] = o.url.hostname;
  return s;
}
