import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import amqp, { type Channel, type ChannelModel, type Options } from 'amqplib';

/** The shared RabbitMQ on loopback (guest works on loopback only). */
export const AMQP_URL = process.env['RABBITMQ_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672';

const run = promisify(execFile);

/** A name unique to this test run: queues and exchanges of the shared server never collide. */
export const unique = (prefix: string) => `test.${prefix}.${process.pid}.${randomBytes(4).toString('hex')}`;

/** A test-side client: declares, publishes, inspects and cleans up what a test made. */
export interface Admin {
  readonly connection: ChannelModel;
  readonly channel: Channel;
  /** Publish to `exchange` with `key` (waits for the broker's confirm). */
  publish(exchange: string, key: string, body: string | Buffer, options?: Options.Publish): Promise<void>;
  /** Messages ready (not delivered) in `queue`. */
  ready(queue: string): Promise<number>;
  /** Consumers of `queue`. */
  consumers(queue: string): Promise<number>;
  /** Delete this queue when the test ends. */
  queue(name: string): string;
  /** Delete this exchange when the test ends. */
  exchange(name: string): string;
  /** Delete what was registered and close. */
  close(): Promise<void>;
}

/** Open a test-side client on its own connection (publishes through a confirm channel). */
export async function admin(): Promise<Admin> {
  let connection = await amqp.connect(AMQP_URL);
  let channel: Channel = await connection.createConfirmChannel();
  const queues = new Set<string>();
  const exchanges = new Set<string>();
  // after a broker-side close of its connection the admin reconnects on demand
  const ch = async (): Promise<Channel> => {
    try {
      await channel.checkExchange('amq.topic');
      return channel;
    } catch {
      connection = await amqp.connect(AMQP_URL);
      channel = await connection.createConfirmChannel();
      return channel;
    }
  };
  connection.on('error', () => undefined);
  return {
    get connection() {
      return connection;
    },
    get channel() {
      return channel;
    },
    async publish(exchange, key, body, options = {}) {
      const c = (await ch()) as amqp.ConfirmChannel;
      await new Promise<void>((resolve, reject) =>
        c.publish(exchange, key, Buffer.from(body), { persistent: true, ...options }, (err: unknown) =>
          err ? reject(err) : resolve(),
        ),
      );
    },
    async ready(queue) {
      return (await (await ch()).checkQueue(queue)).messageCount;
    },
    async consumers(queue) {
      return (await (await ch()).checkQueue(queue)).consumerCount;
    },
    queue(name) {
      queues.add(name);
      return name;
    },
    exchange(name) {
      exchanges.add(name);
      return name;
    },
    async close() {
      // ch() reconnects when a test closed the admin's connection broker-side, so nothing here is expected to fail
      // (deleting a queue or exchange that is already gone is not an error in RabbitMQ): a failure fails the test.
      const c = await ch();
      for (const q of queues) await c.deleteQueue(q);
      for (const e of exchanges) await c.deleteExchange(e);
      await connection.close();
    },
  };
}

/** `rabbitmqctl <args>` (slow: it boots an Erlang VM, several seconds). */
export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', args, { timeout: 60_000 });
  return stdout;
}

/**
 * Close, from the broker's side, every connection whose client-given `connection_name` is `name`; resolves with how
 * many. Only those: the broker is shared with the other packages' tests running at the same time (a
 * `close_all_connections` cut theirs too and made them time out).
 */
export async function closeConnections(name: string, reason: string): Promise<number> {
  const out = await rabbitmqctl(
    'list_connections',
    'pid',
    'client_properties',
    '--quiet',
    '--no-table-headers',
  );
  const pids = out
    .split('\n')
    .filter((line) => line.includes(`{"connection_name",${JSON.stringify(name)}}`))
    .map((line) => line.split('\t')[0] as string);
  for (const pid of pids) await rabbitmqctl('close_connection', pid, reason);
  return pids.length;
}

/** Unacknowledged messages of `queue`, as the broker counts them. */
export async function unacked(queue: string): Promise<number> {
  const out = await rabbitmqctl(
    'list_queues',
    'name',
    'messages_unacknowledged',
    '--quiet',
    '--no-table-headers',
  );
  for (const line of out.split('\n')) {
    const [name, n] = line.trim().split(/\s+/);
    if (name === queue) return Number(n);
  }
  throw new Error(`queue ${queue} not listed`);
}
