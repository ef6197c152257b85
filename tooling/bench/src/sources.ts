import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { Source } from '@connector/core';
import { findExecutable, startServerProcess } from '@connector/testing';
import { core } from './core.js';
import { registerCase, type SourceRun } from './registry.js';

// Broker clients and test brokers are imported inside each case, so the throughput cases' worker processes
// (and their peak RSS) do not carry kafkajs, the AWS SDK and fauxqs.

/** Run a connector with `source` until `n` invocations have succeeded; time from the first publish. */
async function measure(
  url: string,
  source: Source,
  n: number,
  publish: () => Promise<void>,
  note: string,
): Promise<SourceRun> {
  const controller = core.createController({ gatewayUrl: url, connectorName: 'bench' });
  let done = 0;
  let finished!: () => void;
  const all = new Promise<void>((r) => (finished = r));
  controller.subscribe((r) => {
    if (!r.error && r.final && ++done === n) finished();
  });
  const connector = core.createConnector({ controller, source, maxInFlight: 64 });
  await connector.start();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await publish();
  await all;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await connector.stop();
  return {
    messages: n,
    seconds,
    messagesPerSec: n / seconds,
    cpuPer10k: ((cpu.user + cpu.system) / 1e6) * (10_000 / n),
    note,
  };
}

const body = '{"reading":21.5,"sensor":"kitchen"}';

/** A private broker process on a free loopback port with a temp dir, allowed on every CPU (`anyCpu`): testing's
 * `startServerProcess` (ready once the port accepts connections; `stop()` sends SIGTERM, SIGKILL after 5 s, and
 * removes the dir). taskset execs the broker, so `pid` is the broker's. */
async function privateBroker(
  bin: string,
  prefix: string,
  args: (place: { port: number; dir: string; configFile: string }) => string[],
  config?: (place: { port: number }) => string,
): Promise<{ port: number; pid: number | undefined; stop(): Promise<void> }> {
  const path = findExecutable(bin) ?? bin;
  const server = await startServerProcess({
    command: anyCpu(path, [])[0],
    prefix,
    args: (place) => anyCpu(path, args(place))[1],
    ...(config ? { config } : {}),
  });
  return { port: server.port, pid: server.pid, stop: server.stop };
}

/** A private Mosquitto: no persistence, no queue or in-flight limits. */
export async function startMosquitto(): Promise<{
  url: string;
  pid: number | undefined;
  stop(): Promise<void>;
}> {
  const broker = await privateBroker(
    process.env['MOSQUITTO_BIN'] ?? 'mosquitto',
    'bench-mosq-',
    ({ configFile }) => ['-c', configFile],
    ({ port }) =>
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_inflight_messages 0\n`,
  );
  return { url: `mqtt://127.0.0.1:${broker.port}`, pid: broker.pid, stop: broker.stop };
}

/** A private nats-server with JetStream (file store in its temp dir). */
export async function startNatsServer(): Promise<{
  url: string;
  pid: number | undefined;
  stop(): Promise<void>;
}> {
  const server = await privateBroker(
    process.env['NATS_SERVER_BIN'] ?? 'nats-server',
    'bench-nats-',
    ({ port, dir }) => ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(dir, 'js')],
  );
  return { url: `nats://127.0.0.1:${server.port}`, pid: server.pid, stop: server.stop };
}

/** The RabbitMQ the bench uses: RABBITMQ_URL, or the broker on 127.0.0.1:5672 (guest/guest). */
export const rabbitmqUrl = () => process.env['RABBITMQ_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672';

/**
 * Why the RabbitMQ cases cannot run here, or undefined: the broker (a system service, not started by the bench) must
 * accept TCP connections at `rabbitmqUrl()`. Synchronous (the CLI asks before scheduling): a child `node` tries.
 */
export const rabbitmqMissing = () => {
  const url = new URL(rabbitmqUrl());
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || (url.protocol === 'amqps:' ? 5671 : 5672));
  return reachable(host, port) ? undefined : `RabbitMQ not reachable at ${host}:${port}, see RABBITMQ_URL`;
};

/** Whether a TCP connection to `host:port` opens within a second. */
function reachable(host: string, port: number): boolean {
  const script =
    `const s = require('node:net').connect(${port}, ${JSON.stringify(host)}, () => process.exit(0));` +
    "s.on('error', () => process.exit(1)); setTimeout(() => process.exit(1), 1000);";
  try {
    execFileSync(process.execPath, ['-e', script], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * A RabbitMQ case's own topology on the shared broker: a queue and a topic exchange named for this process and
 * moment (publishing to `amq.topic` would reach every other run's queue bound with the same key). The publisher
 * deletes both at the end; `x-expires` removes a queue left behind by a killed run after 10 idle minutes.
 */
export function rabbitmqTopology(what: string): {
  queue: string;
  exchange: string;
  queueArguments: Record<string, unknown>;
} {
  const name = `bench.${what}.${process.pid}.${Date.now()}`;
  return { queue: name, exchange: name, queueArguments: { 'x-expires': 600_000 } };
}

/** Why the NATS cases cannot run here, or undefined. */
export const natsMissing = () =>
  has(process.env['NATS_SERVER_BIN'] ?? 'nats-server') ? undefined : 'nats-server not installed';

/**
 * `cmd args` allowed on every CPU of the machine: the worker is pinned to CPU 0 and its children would inherit that.
 * The machine's CPUs, not `availableParallelism()`: inside the pinned worker that is 1 (it honours the affinity), and
 * the broker and publisher then shared CPU 0 with the connector they are measured beside.
 */
export function anyCpu(cmd: string, args: string[]): [string, string[]] {
  const n = cpus().length;
  return has('taskset') && n >= 2 ? ['taskset', ['-c', `0-${n - 1}`, cmd, ...args]] : [cmd, args];
}

/** MQTT QoS 1 through a private Mosquitto (its own process) to the gateway. */
async function mqttCase(url: string, n: number): Promise<SourceRun> {
  const { default: mqtt } = await import('mqtt');
  const { mqttSource } = await import('@connector/source-mqtt');
  const mosquitto = await startMosquitto();
  try {
    const brokerUrl = mosquitto.url;
    const pub = await mqtt.connectAsync(brokerUrl, { reconnectPeriod: 0 }); // it accepts connections
    const source = mqttSource({
      broker: brokerUrl,
      topics: ['bench'],
      clientId: 'bench-connector',
      qos: 1,
      protocolVersion: 5,
    });
    const run = await measure(
      url,
      source,
      n,
      async () => {
        const sends: Promise<unknown>[] = [];
        for (let i = 0; i < n; i++) sends.push(pub.publishAsync('bench', body, { qos: 1 }));
        await Promise.all(sends);
      },
      'QoS 1, MQTT 5, Mosquitto in its own process; the publisher runs in the connector process',
    );
    await pub.endAsync();
    return run;
  } finally {
    await mosquitto.stop();
  }
}

/** Kafka through tooling/kafka-test-broker (in this process) with the real kafkajs client. */
async function kafkaCase(url: string, n: number): Promise<SourceRun> {
  const { startKafkaBroker } = await import('@connector/kafka-test-broker');
  const { kafkaSource } = await import('@connector/source-kafka');
  const { Kafka, logLevel } = await import('kafkajs');
  const broker = await startKafkaBroker({ port: 0, partitions: 8 });
  const kafka = new Kafka({
    clientId: 'bench-producer',
    brokers: broker.brokers,
    logLevel: logLevel.NOTHING,
  });
  const producer = kafka.producer();
  await producer.connect();
  broker.createTopic('bench', 8);
  try {
    const source = kafkaSource({
      brokers: broker.brokers,
      topics: ['bench'],
      group: 'bench',
      sessionTimeout: 6000,
    });
    return await measure(
      url,
      source,
      n,
      async () => {
        for (let i = 0; i < n; i += 500) {
          const count = Math.min(500, n - i);
          await producer.send({
            topic: 'bench',
            messages: Array.from({ length: count }, (_, j) => ({ key: `k${i + j}`, value: body })),
          });
        }
      },
      '8 partitions; broker and producer run in the connector process (the test broker is not Kafka: compare runs, not systems)',
    );
  } finally {
    await producer.disconnect();
    await broker.close();
  }
}

/** SQS through fauxqs (in this process), 4 pollers x 10 messages. */
async function sqsCase(url: string, n: number): Promise<SourceRun> {
  const { CreateQueueCommand, SendMessageBatchCommand, SQSClient } = await import('@aws-sdk/client-sqs');
  const { sqsSource } = await import('@connector/source-sqs');
  const { startFauxqs } = await import('fauxqs');
  const server = await startFauxqs({ port: 0, logger: false });
  const clientConfig = {
    endpoint: server.address,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
  };
  const client = new SQSClient(clientConfig);
  try {
    const queue = (await client.send(new CreateQueueCommand({ QueueName: 'bench' }))).QueueUrl as string;
    const source = sqsSource({ queues: ['bench'], waitTime: 1, pollers: 4, clientConfig });
    return await measure(
      url,
      source,
      n,
      async () => {
        const batches: Promise<unknown>[] = [];
        for (let i = 0; i < n; i += 10) {
          const count = Math.min(10, n - i);
          batches.push(
            client.send(
              new SendMessageBatchCommand({
                QueueUrl: queue,
                Entries: Array.from({ length: count }, (_, j) => ({ Id: String(j), MessageBody: body })),
              }),
            ),
          );
          if (batches.length >= 16) await Promise.all(batches.splice(0));
        }
        await Promise.all(batches);
      },
      'fauxqs and the sender run in the connector process; 4 pollers, batches of 10, delete batched',
    );
  } finally {
    client.destroy();
    await server.stop();
  }
}

/** RabbitMQ through the broker on 127.0.0.1:5672 (RABBITMQ_URL): a queue and a topic exchange of its own. */
async function rabbitmqCase(url: string, n: number): Promise<SourceRun> {
  const { default: amqp } = await import('amqplib');
  const { rabbitmqSource } = await import('@connector/source-rabbitmq');
  const brokerUrl = rabbitmqUrl();
  const topology = rabbitmqTopology('source');
  const conn = await amqp.connect(brokerUrl);
  const ch = await conn.createConfirmChannel();
  try {
    const source = rabbitmqSource({ url: brokerUrl, ...topology, topics: ['bench'], prefetch: 64 });
    return await measure(
      url,
      source,
      n,
      async () => {
        const content = Buffer.from(body);
        for (let i = 0; i < n; i++) {
          if (!ch.publish(topology.exchange, 'bench', content, { contentType: 'application/json' }))
            await new Promise((r) => ch.once('drain', r));
        }
        await ch.waitForConfirms();
      },
      'prefetch 64 = maxInFlight; transient messages on a durable queue; the publisher runs in the connector process',
    );
  } finally {
    await ch.deleteQueue(topology.queue).catch(() => undefined);
    await ch.deleteExchange(topology.exchange).catch(() => undefined);
    await conn.close().catch(() => undefined);
  }
}

/** JetStream through a private nats-server (its own process, file store), durable pull consumer, acked after delivery. */
async function natsCase(url: string, n: number): Promise<SourceRun> {
  const { connect } = await import('@nats-io/transport-node');
  const { jetstream } = await import('@nats-io/jetstream');
  const { natsSource } = await import('@connector/source-nats');
  const server = await startNatsServer();
  try {
    const nc = await connect({ servers: server.url, reconnect: false });
    const source = natsSource({
      servers: server.url,
      stream: 'BENCH',
      consumer: 'bench',
      subjects: ['bench'],
    });
    const js = jetstream(nc);
    const run = await measure(
      url,
      source,
      n,
      async () => {
        const sends: Promise<unknown>[] = [];
        for (let i = 0; i < n; i++) {
          sends.push(js.publish('bench', body));
          if (sends.length === 1000) await Promise.all(sends.splice(0));
        }
        await Promise.all(sends);
      },
      'JetStream (file store), durable pull consumer, max_ack_pending 64; nats-server in its own process, the publisher in the connector process',
    );
    await nc.close();
    return run;
  } finally {
    await server.stop();
  }
}

/** Whether `cmd` is installed: on PATH or in the usual sbin/bin folders (testing's `findExecutable`, which also
 * starts the private brokers: mosquitto lives in /usr/sbin, often not on a user's PATH). */
export const has = (cmd: string) => findExecutable(cmd) !== undefined;

registerCase({
  kind: 'source',
  id: 'source-mqtt',
  label: 'MQTT (Mosquitto, QoS 1)',
  maxMessages: 20_000,
  unavailable: () =>
    has(process.env['MOSQUITTO_BIN'] ?? 'mosquitto') ? undefined : 'mosquitto not installed',
  run: (p) => mqttCase(p.url, p.n),
});
registerCase({
  kind: 'source',
  id: 'source-kafka',
  label: 'Kafka (kafka-test-broker, kafkajs)',
  maxMessages: 20_000,
  run: (p) => kafkaCase(p.url, p.n),
});
registerCase({
  kind: 'source',
  id: 'source-sqs',
  label: 'SQS (fauxqs)',
  maxMessages: 5_000,
  run: (p) => sqsCase(p.url, p.n),
});
registerCase({
  kind: 'source',
  id: 'source-rabbitmq',
  label: 'RabbitMQ (amqplib, prefetch 64)',
  maxMessages: 20_000,
  unavailable: rabbitmqMissing,
  run: (p) => rabbitmqCase(p.url, p.n),
});
registerCase({
  kind: 'source',
  id: 'source-nats',
  label: 'NATS JetStream (nats-server, pull consumer)',
  maxMessages: 20_000,
  unavailable: natsMissing,
  run: (p) => natsCase(p.url, p.n),
});
