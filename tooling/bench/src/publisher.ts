/**
 * The publisher of the end-to-end source cases (`src/e2e.ts`), in a process of its own so that the connector
 * process's CPU is the connector's alone: `node publisher.js <mqtt|kafka|sqs> <json config>`, with an IPC channel.
 *
 * - Kafka and SQS: the test broker (kafka-test-broker, fauxqs) runs here too; `{ ready: {...} }` says where.
 * - MQTT: connects to the Mosquitto the case started; `{ ready: {} }` once connected.
 * - On `{ publish: n }` it publishes `n` messages (round robin over the topics / partitions) and answers
 *   `{ published: n }` once the broker has them; on `{ close: true }` it closes and exits.
 */
const [kind, raw] = process.argv.slice(2);
const cfg = JSON.parse(raw ?? '{}') as { url?: string; topics?: string[]; partitions?: number };
const body = '{"reading":21.5,"sensor":"kitchen"}';
const send = (m: unknown) => process.send?.(m);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let publish: (count: number) => Promise<void>;
let close: () => Promise<void>;
let ready: unknown = {};

if (kind === 'mqtt') {
  const { default: mqtt } = await import('mqtt');
  const topics = cfg.topics ?? ['bench'];
  let c: Awaited<ReturnType<typeof mqtt.connectAsync>> | undefined;
  for (let i = 0; i < 100 && !c; i++)
    c = await mqtt
      .connectAsync(cfg.url as string, { reconnectPeriod: 0, protocolVersion: 5 })
      .catch(async () => {
        await sleep(50);
        return undefined;
      });
  if (!c) throw new Error('mosquitto did not start');
  const client = c;
  let next = 0;
  publish = async (count) => {
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < count; i++) {
      sends.push(client.publishAsync(topics[next++ % topics.length] as string, body, { qos: 1 }));
      if (sends.length === 1000) await Promise.all(sends.splice(0));
    }
    await Promise.all(sends);
  };
  close = () => client.endAsync();
} else if (kind === 'kafka') {
  const { startKafkaBroker } = await import('@connector/kafka-test-broker');
  const { Kafka, logLevel } = await import('kafkajs');
  const partitions = cfg.partitions ?? 3;
  const broker = await startKafkaBroker({ port: 0, partitions });
  broker.createTopic('bench', partitions);
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
      await producer.send({ topic: 'bench', messages });
    }
  };
  close = async () => {
    await producer.disconnect();
    await broker.close();
  };
  ready = { brokers: broker.brokers };
} else if (kind === 'sqs') {
  const { CreateQueueCommand, SendMessageBatchCommand, SQSClient } = await import('@aws-sdk/client-sqs');
  const { startFauxqs } = await import('fauxqs');
  const server = await startFauxqs({ port: 0, logger: false });
  const clientConfig = {
    endpoint: server.address,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
  };
  const client = new SQSClient(clientConfig);
  const queue = (await client.send(new CreateQueueCommand({ QueueName: 'bench' }))).QueueUrl as string;
  publish = async (count) => {
    const batches: Promise<unknown>[] = [];
    for (let i = 0; i < count; i += 10) {
      const Entries = Array.from({ length: Math.min(10, count - i) }, (_, j) => ({
        Id: String(j),
        MessageBody: body,
      }));
      batches.push(client.send(new SendMessageBatchCommand({ QueueUrl: queue, Entries })));
      if (batches.length >= 16) await Promise.all(batches.splice(0));
    }
    await Promise.all(batches);
  };
  close = async () => {
    client.destroy();
    await server.stop();
  };
  ready = { clientConfig };
} else throw new Error(`publisher: unknown kind ${kind}`);

process.on('message', (m: { publish?: number; close?: boolean }) => {
  if (m.publish !== undefined) {
    const count = m.publish;
    publish(count).then(
      () => send({ published: count }),
      (err: unknown) => send({ error: String((err as Error)?.stack ?? err) }),
    );
  } else if (m.close) {
    void close()
      .catch(() => undefined)
      .then(() => process.exit(0));
  }
});
send({ ready });
