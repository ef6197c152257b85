/**
 * The publisher of the end-to-end source cases (`src/e2e.ts`), in a process of its own so that the connector
 * process's CPU is the connector's alone: `node publisher.js <mqtt|kafka|sqs|nats|rabbitmq> <json config>`, with an
 * IPC channel.
 *
 * - Kafka and SQS: the test broker (kafka-test-broker, fauxqs) runs here too; `{ ready: {...} }` says where. The
 *   config's `topic` names the Kafka topic / SQS queue (default `bench`).
 * - MQTT: connects to the Mosquitto the case started; `{ ready: {} }` once connected.
 * - NATS: JetStream publishes (with acks) to subject `topic` on the nats-server at `url` the case started.
 * - RabbitMQ: confirmed publishes (a confirm channel) to the case's own topic exchange `exchange`, routing key
 *   `bench`, on the broker at `url` (the exchange exists once the source has started); at close it deletes the
 *   case's `queue` and `exchange`.
 * - On `{ cpu: true }` it answers `{ cpuMicros }`, its own user+sys CPU so far (broker included for Kafka / SQS).
 * - On `{ publish: n }` it publishes `n` messages (round robin over the topics / partitions) and answers
 *   `{ published: n }` once the broker has them; on `{ close: true }` it closes and exits, and so it does when the
 *   IPC channel goes (the case's process died): nothing is left on a shared broker.
 */
const [kind, raw] = process.argv.slice(2);
const cfg = JSON.parse(raw ?? '{}') as {
  url?: string;
  topics?: string[];
  partitions?: number;
  topic?: string;
  exchange?: string;
  queue?: string;
};
/** The Kafka topic / SQS queue published to. */
const target = cfg.topic ?? 'bench';
const body = '{"reading":21.5,"sensor":"kitchen"}';
const send = (m: unknown) => process.send?.(m);

let publish: (count: number) => Promise<void>;
let closing = false;
function shutDown(): void {
  if (closing) return;
  closing = true;
  setTimeout(() => process.exit(1), 10_000).unref(); // a broker that does not answer any more
  void close()
    .catch(() => undefined)
    .then(() => process.exit(0));
}
let close: () => Promise<void>;
let ready: unknown = {};

if (kind === 'mqtt') {
  // Raw MQTT 3.1.1 over a socket, packets built once: mqtt.js would spend more CPU per message publishing than the
  // connector spends consuming, and on a small machine that CPU is taken from the connector or the gateway.
  const { createConnection } = await import('node:net');
  const url = new URL(cfg.url as string);
  const topics = (cfg.topics ?? ['bench']).map((t) => Buffer.from(t));
  const payload = Buffer.from(body);
  const varint = (n: number) => {
    const out: number[] = [];
    do {
      let b = n % 128;
      n = Math.floor(n / 128);
      if (n > 0) b |= 128;
      out.push(b);
    } while (n > 0);
    return Buffer.from(out);
  };
  const packet = (first: number, rest: Buffer) =>
    Buffer.concat([Buffer.from([first]), varint(rest.length), rest]);
  const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);
  const clientId = Buffer.from(`bench-publisher-${process.pid}`);
  // CONNECT: protocol MQTT level 4, clean session, keepalive 0 (no PINGs); the broker answers CONNACK (4 bytes).
  const connect = packet(
    0x10,
    Buffer.concat([u16(4), Buffer.from('MQTT'), Buffer.from([4, 2]), u16(0), u16(clientId.length), clientId]),
  );
  const socket = await new Promise<import('node:net').Socket>((resolve, reject) => {
    let tries = 0;
    const attempt = () => {
      const s = createConnection({ host: url.hostname, port: Number(url.port) }, () => resolve(s));
      s.once('error', () =>
        ++tries < 100 ? setTimeout(attempt, 50) : reject(new Error('mosquitto did not start')),
      );
    };
    attempt();
  });
  socket.setNoDelay(true);
  // Everything the broker sends after CONNACK is a 4-byte PUBACK: count them.
  let received = -4;
  let acked = 0;
  const waiters: { at: number; done: () => void }[] = [];
  const connected = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= 0) resolve();
      acked = Math.max(0, Math.floor(received / 4));
      while (waiters.length > 0 && (waiters[0] as { at: number }).at <= acked) waiters.shift()?.done();
    });
  });
  socket.write(connect);
  await connected;
  let sent = 0;
  let id = 0;
  publish = (count) => {
    const chunks: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const topic = topics[sent++ % topics.length] as Buffer;
      id = (id % 65535) + 1;
      chunks.push(packet(0x32, Buffer.concat([u16(topic.length), topic, u16(id), payload])));
    }
    socket.write(Buffer.concat(chunks));
    return new Promise<void>((resolve) => waiters.push({ at: sent, done: resolve }));
  };
  close = async () => {
    socket.end(Buffer.from([0xe0, 0]));
  };
} else if (kind === 'kafka') {
  const { startKafkaBroker } = await import('@connector/kafka-test-broker');
  const { Kafka, logLevel } = await import('kafkajs');
  const partitions = cfg.partitions ?? 3;
  const broker = await startKafkaBroker({ port: 0, partitions });
  broker.createTopic(target, partitions);
  const producer = new Kafka({
    clientId: 'bench-producer',
    brokers: broker.brokers,
    logLevel: logLevel.NOTHING,
  }).producer();
  await producer.connect();
  let next = 0;
  publish = async (count) => {
    for (let i = 0; i < count; i += 500) {
      const messages = Array.from({ length: Math.min(500, count - i) }, () => ({
        partition: next++ % partitions,
        value: body,
      }));
      await producer.send({ topic: target, messages });
    }
  };
  close = async () => {
    await producer.disconnect();
    await broker.close();
  };
  ready = { brokers: broker.brokers };
} else if (kind === 'sqs') {
  const { CreateQueueCommand, SQSClient } = await import('@aws-sdk/client-sqs');
  const { startFauxqs } = await import('fauxqs');
  const server = await startFauxqs({ port: 0, logger: false });
  const clientConfig = {
    endpoint: server.address,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
  };
  const client = new SQSClient(clientConfig);
  const queue = (await client.send(new CreateQueueCommand({ QueueName: target }))).QueueUrl as string;
  // SendMessageBatch as prebuilt JSON-protocol requests over undici (fauxqs checks no signature): the AWS SDK spends
  // ~0.5 ms of CPU a call, on the same 2 CPUs as the connector, and a batch of 10 equal messages is the same bytes
  // every time (entry ids are per request).
  const { Pool } = await import('undici');
  const pool = new Pool(server.address, { connections: 16 });
  const request = (n: number) =>
    JSON.stringify({
      QueueUrl: queue,
      Entries: Array.from({ length: n }, (_, j) => ({ Id: String(j), MessageBody: body })),
    });
  const full = request(10);
  const headers = {
    'content-type': 'application/x-amz-json-1.0',
    'x-amz-target': 'AmazonSQS.SendMessageBatch',
  };
  const sendBatch = async (n: number) => {
    const res = await pool.request({
      path: '/',
      method: 'POST',
      headers,
      body: n === 10 ? full : request(n),
    });
    const text = await res.body.text();
    const failed = (JSON.parse(text) as { Failed?: unknown[] }).Failed ?? [];
    if (res.statusCode !== 200 || failed.length > 0)
      throw new Error(`SendMessageBatch: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
  };
  publish = async (count) => {
    const batches: Promise<unknown>[] = [];
    for (let i = 0; i < count; i += 10) {
      batches.push(sendBatch(Math.min(10, count - i)));
      if (batches.length >= 16) await Promise.all(batches.splice(0));
    }
    await Promise.all(batches);
  };
  close = async () => {
    client.destroy();
    await pool.close();
    await server.stop();
  };
  ready = { clientConfig };
} else if (kind === 'nats') {
  // JetStream publishes with acks, up to 256 awaited at a time (the stream exists once the source has started).
  const { connect } = await import('@nats-io/transport-node');
  const { jetstream } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: cfg.url as string, reconnect: false });
  const js = jetstream(nc);
  publish = async (count) => {
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < count; i++) {
      sends.push(js.publish(target, body));
      if (sends.length === 256) await Promise.all(sends.splice(0));
    }
    await Promise.all(sends);
  };
  close = () => nc.close();
} else if (kind === 'rabbitmq') {
  // Confirmed publishes with routing key `bench` to the case's own exchange; its queue and exchange go at close.
  const { default: amqp } = await import('amqplib');
  const exchange = cfg.exchange as string;
  const conn = await amqp.connect(cfg.url as string);
  const ch = await conn.createConfirmChannel();
  const content = Buffer.from(body);
  publish = async (count) => {
    for (let i = 0; i < count; i++)
      if (!ch.publish(exchange, 'bench', content, { contentType: 'application/json' }))
        await new Promise((r) => ch.once('drain', r));
    await ch.waitForConfirms();
  };
  close = async () => {
    if (cfg.queue) await ch.deleteQueue(cfg.queue).catch(() => undefined);
    await ch.deleteExchange(exchange).catch(() => undefined);
    await conn.close();
  };
} else throw new Error(`publisher: unknown kind ${kind}`);

process.on('message', (m: { publish?: number; close?: boolean; cpu?: boolean }) => {
  if (m.cpu) {
    const { user, system } = process.cpuUsage();
    send({ cpuMicros: user + system });
  } else if (m.publish !== undefined) {
    const count = m.publish;
    publish(count).then(
      () => send({ published: count }),
      (err: unknown) => send({ error: String((err as Error)?.stack ?? err) }),
    );
  } else if (m.close) shutDown();
});
// The case's process went without `close` (it failed or was killed): clean up all the same, then go.
process.on('disconnect', shutDown);
send({ ready });
