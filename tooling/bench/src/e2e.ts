import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Source, TopicMatcherOption } from '@connector/core';
import { core } from './core.js';
import { procCpuMicros, timed, warmUp } from './measure.js';
import { type CaseParams, registerCase } from './registry.js';
import {
  anyCpu,
  has,
  natsMissing,
  rabbitmqMissing,
  rabbitmqTopology,
  rabbitmqUrl,
  startMosquitto,
  startNatsServer,
} from './sources.js';

// Each source end to end against its own ceiling: `controller.invoke` with the concurrency the source can reach,
// measured in the same run (ratios per repetition, like the other throughput rows). The publisher (and the Kafka /
// SQS test broker) runs in a process of its own (`publisher.ts`), so the CPU per message is the connector's alone.

const here = dirname(fileURLToPath(import.meta.url));
/** Messages the publisher may be ahead of the invocations, and how many it is asked for at a time. */
const AHEAD = 1024;
const STEP = 128;

/** The publisher process: `publish(n)` resolves when the broker has the n messages. */
interface Publisher {
  readonly ready: Record<string, unknown>;
  publish(count: number): Promise<void>;
  /** The publisher process's user+sys CPU so far, µs (a Kafka / SQS test broker runs in it too). */
  cpuMicros(): Promise<number>;
  close(): Promise<void>;
}

async function startPublisher(
  kind: 'mqtt' | 'kafka' | 'sqs' | 'nats' | 'rabbitmq',
  cfg: object,
): Promise<Publisher> {
  const [cmd, args] = anyCpu(process.execPath, [join(here, 'publisher.js'), kind, JSON.stringify(cfg)]);
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting: ((m: { published?: number; error?: string }) => void)[] = [];
  const cpuWaiting: ((micros: number) => void)[] = [];
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`bench publisher (${kind}) exited with ${code}`)));
    child.on(
      'message',
      (m: { ready?: Record<string, unknown>; published?: number; error?: string; cpuMicros?: number }) => {
        if (m.ready) resolve(m.ready);
        else if (m.cpuMicros !== undefined) cpuWaiting.shift()?.(m.cpuMicros);
        else waiting.shift()?.(m);
      },
    );
  });
  return {
    ready,
    publish: (count) =>
      new Promise((resolve, reject) => {
        waiting.push((m) => (m.error ? reject(new Error(`bench publisher: ${m.error}`)) : resolve()));
        child.send({ publish: count });
      }),
    cpuMicros: () =>
      new Promise((resolve) => {
        cpuWaiting.push(resolve);
        child.send({ cpu: true });
      }),
    close: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.send({ close: true });
      }),
  };
}

/**
 * A connector (`maxInFlight`, default 64) with `source`; one warm-up, then one measured repetition: from the publish
 * command to the last successful invocation. CPU is this process's only; latency is each invocation's
 * (`result.duration`; a batch's request duration for each of its messages).
 */
async function e2e(
  p: CaseParams,
  source: Source,
  publisher: Publisher,
  topicMatcher: TopicMatcherOption = 'exact',
  brokerPid?: number,
  maxInFlight = 64,
) {
  const controller = core.createController({ gatewayUrl: p.url, connectorName: 'bench', topicMatcher });
  let phase: { lat: Float64Array; done: number; more(): void; finished(err?: Error): void } | undefined;
  controller.subscribe((r) => {
    if (!phase || !r.final) return;
    if (r.error) phase.finished(new Error(`bench: invocation failed: ${r.error.message}`));
    else {
      phase.lat[phase.done] = r.duration;
      if (++phase.done === phase.lat.length) phase.finished();
      else phase.more();
    }
  });
  // The publisher stays at most AHEAD messages ahead of the invocations, as a steady stream would: a broker with
  // an ever longer backlog measures the broker (Mosquitto's per-client queue costs more the longer it is).
  const batch = (n: number) => (lat: Float64Array) =>
    new Promise<void>((resolve, reject) => {
      let published = 0;
      const more = () => {
        const p = phase as NonNullable<typeof phase>;
        while (published < n && published - p.done <= AHEAD - STEP) {
          const count = Math.min(STEP, n - published);
          published += count;
          publisher.publish(count).catch(reject);
        }
      };
      phase = { lat, done: 0, more, finished: (err) => (err ? reject(err) : resolve()) };
      more();
    });
  const connector = core.createConnector({ controller, source, maxInFlight });
  try {
    await connector.start();
    // A source runs more code per message than `invoke` (the broker client's decoding, the source, the engine's
    // ack path), and V8 takes longer to settle on it: kafkajs still got 25 % cheaper a record between 15k and 60k
    // records. So the warm-up is as long as the measured repetition (N, not the core rows' N/4): steady state is
    // what a long-running connector sees.
    const warm = p.quick ? warmUp(p) : Math.max(warmUp(p), p.n);
    await timed(warm, batch(warm));
    const pub0 = await publisher.cpuMicros();
    const broker0 = procCpuMicros(brokerPid);
    const rep = await timed(p.n, batch(p.n), p);
    const per10k = (micros: number) => (micros / 1e6) * (10_000 / p.n);
    const broker1 = procCpuMicros(brokerPid);
    rep.othersCpuPer10k = {
      publisher: per10k((await publisher.cpuMicros()) - pub0),
      ...(broker0 !== undefined && broker1 !== undefined ? { broker: per10k(broker1 - broker0) } : {}),
    };
    return rep;
  } finally {
    try {
      await connector.stop();
    } finally {
      await publisher.close(); // deletes the RabbitMQ case's queue and exchange
    }
  }
}

/** MQTT QoS 1, MQTT 5, through a private Mosquitto; `topics` published round robin. */
async function mqttE2e(p: CaseParams, topics: string[], filter: string, ordering: 'key' | 'none') {
  const { mqttSource } = await import('@connector/source-mqtt');
  const mosquitto = await startMosquitto();
  try {
    const publisher = await startPublisher('mqtt', { url: mosquitto.url, topics });
    const source = mqttSource({
      broker: mosquitto.url,
      topics: [filter],
      clientId: 'bench-connector',
      qos: 1,
      protocolVersion: 5,
      ordering,
    });
    return await e2e(p, source, publisher, filter.includes('#') ? 'mqtt' : 'exact', mosquitto.pid);
  } finally {
    await mosquitto.stop();
  }
}

/** Kafka, 3 partitions, through tooling/kafka-test-broker (in the publisher's process) with kafkajs. */
async function kafkaE2e(p: CaseParams) {
  const { kafkaSource } = await import('@connector/source-kafka');
  const publisher = await startPublisher('kafka', { partitions: 3 });
  const source = kafkaSource({
    brokers: publisher.ready['brokers'] as string[],
    topics: ['bench'],
    group: 'bench',
    sessionTimeout: 6000,
  });
  return e2e(p, source, publisher);
}

/** SQS standard queue through fauxqs (in the publisher's process), 4 pollers x 10 messages. */
async function sqsE2e(p: CaseParams) {
  const { sqsSource } = await import('@connector/source-sqs');
  const publisher = await startPublisher('sqs', {});
  const clientConfig = publisher.ready['clientConfig'] as { endpoint: string };
  const source = sqsSource({ queues: ['bench'], waitTime: 1, pollers: 4, clientConfig });
  return e2e(p, source, publisher);
}

/** NATS JetStream through a private nats-server (file store), durable pull consumer, max_ack_pending 64. */
async function natsE2e(p: CaseParams) {
  const { natsSource } = await import('@connector/source-nats');
  const server = await startNatsServer();
  try {
    const publisher = await startPublisher('nats', { url: server.url, topic: 'bench' });
    const source = natsSource({
      servers: server.url,
      stream: 'BENCH',
      consumer: 'bench',
      subjects: ['bench'],
    });
    return await e2e(p, source, publisher, 'exact', server.pid);
  } finally {
    await server.stop();
  }
}

/**
 * RabbitMQ through the system's broker (`RABBITMQ_URL`, default 127.0.0.1:5672): a queue and a topic exchange of
 * its own per run (deleted at the end, so runs side by side do not get each other's messages), prefetch 64. The
 * broker CPU is the shared broker's (`beam.smp` on this machine), whatever else uses it meanwhile.
 */
async function rabbitmqE2e(p: CaseParams) {
  const { rabbitmqSource } = await import('@connector/source-rabbitmq');
  const url = rabbitmqUrl();
  const topology = rabbitmqTopology('e2e');
  const publisher = await startPublisher('rabbitmq', {
    url,
    queue: topology.queue,
    exchange: topology.exchange,
  });
  const source = rabbitmqSource({ url, ...topology, topics: ['bench'], prefetch: 64 });
  return e2e(p, source, publisher, 'exact', localBrokerPid(url, 'beam\\.smp.*rabbit'));
}

/**
 * The pid of a system broker on this machine: the oldest process whose command line matches `pattern` (`pgrep -f`),
 * or undefined when there is none or the broker at `url` is not on the loopback (its CPU is not ours to read).
 */
function localBrokerPid(url: string, pattern: string): number | undefined {
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname)) return undefined;
  try {
    const out = execFileSync('pgrep', ['-o', '-f', pattern], { encoding: 'utf8' }).trim();
    return out === '' ? undefined : Number(out);
  } catch {
    return undefined;
  }
}

/**
 * Batch delivery end to end: topic / queue `bench-batch` reaches the gateway's `echo-batch`
 * (`connector.dev/batch-size` 100), `bench` the plain `echo` (batch size 1). Both sizes run with the same
 * `maxInFlight`, 1000 (a batch counts its messages against it, so 64 would never fill one).
 */
const BATCH_IN_FLIGHT = 1000;
const batchTopic = (size: 1 | 100) => (size === 1 ? 'bench' : 'bench-batch');

/** Kafka, 3 partitions, `ordering=none` (with `key` a partition has one record in flight: a batch would hold 3). */
async function kafkaBatchE2e(p: CaseParams, size: 1 | 100) {
  const { kafkaSource } = await import('@connector/source-kafka');
  const topic = batchTopic(size);
  const publisher = await startPublisher('kafka', { partitions: 3, topic });
  const source = kafkaSource({
    brokers: publisher.ready['brokers'] as string[],
    topics: [topic],
    group: 'bench',
    sessionTimeout: 6000,
    ordering: 'none',
  });
  return e2e(p, source, publisher, 'exact', undefined, BATCH_IN_FLIGHT);
}

/** SQS standard queue through fauxqs, 4 pollers x 10 messages. */
async function sqsBatchE2e(p: CaseParams, size: 1 | 100) {
  const { sqsSource } = await import('@connector/source-sqs');
  const queue = batchTopic(size);
  const publisher = await startPublisher('sqs', { topic: queue });
  const clientConfig = publisher.ready['clientConfig'] as { endpoint: string };
  const source = sqsSource({ queues: [queue], waitTime: 1, pollers: 4, clientConfig });
  return e2e(p, source, publisher, 'exact', undefined, BATCH_IN_FLIGHT);
}

const mosquittoMissing = () =>
  has(process.env['MOSQUITTO_BIN'] ?? 'mosquitto') ? undefined : 'mosquitto not installed';

registerCase({
  kind: 'throughput',
  id: 'e2e-mqtt-one',
  label: 'MQTT one topic, end to end',
  concurrency: 1,
  ceiling: 'invoke-x1',
  scale: 0.25,
  minRatio: 0.9,
  unavailable: mosquittoMissing,
  run: (p) => mqttE2e(p, ['bench'], 'bench', 'key'),
});
registerCase({
  kind: 'throughput',
  id: 'e2e-mqtt-16',
  label: 'MQTT 16 topics (e2e/#), end to end',
  concurrency: 16,
  ceiling: 'invoke-x16',
  scale: 0.5,
  minRatio: 0.8,
  unavailable: mosquittoMissing,
  run: (p) =>
    mqttE2e(
      p,
      Array.from({ length: 16 }, (_, i) => `e2e/${i}`),
      'e2e/#',
      'key',
    ),
});
registerCase({
  kind: 'throughput',
  id: 'e2e-mqtt-none',
  label: 'MQTT one topic, ordering=none, end to end',
  concurrency: 64,
  ceiling: 'invoke-x64',
  scale: 0.5,
  minRatio: 0.8,
  unavailable: mosquittoMissing,
  run: (p) => mqttE2e(p, ['bench'], 'bench', 'none'),
});
registerCase({
  kind: 'throughput',
  id: 'e2e-kafka-3',
  label: 'Kafka 3 partitions, end to end',
  concurrency: 3,
  ceiling: 'invoke-x3',
  scale: 0.5,
  minRatio: 0.8,
  run: (p) => kafkaE2e(p),
});
registerCase({
  kind: 'throughput',
  id: 'e2e-sqs',
  label: 'SQS (4 pollers x 10), end to end',
  concurrency: 64,
  ceiling: 'invoke-x64',
  scale: 0.25,
  minRatio: 0.8,
  run: (p) => sqsE2e(p),
});

registerCase({
  kind: 'throughput',
  id: 'e2e-nats',
  label: 'NATS JetStream, end to end',
  concurrency: 64,
  ceiling: 'invoke-x64',
  scale: 0.5,
  minRatio: 0.8,
  unavailable: natsMissing,
  run: (p) => natsE2e(p),
});
registerCase({
  kind: 'throughput',
  id: 'e2e-rabbitmq',
  label: 'RabbitMQ (prefetch 64), end to end',
  concurrency: 64,
  ceiling: 'invoke-x64',
  scale: 0.5,
  minRatio: 0.8,
  unavailable: rabbitmqMissing,
  run: (p) => rabbitmqE2e(p),
});

for (const [name, label, run, scale] of [
  ['kafka', 'Kafka', kafkaBatchE2e, 0.5],
  ['sqs', 'SQS', sqsBatchE2e, 0.25],
] as const) {
  // Batch size 1 is the reference row of batch size 100 (its `ceiling`): the ratio is what batching gains end to end.
  registerCase({
    kind: 'throughput',
    id: `e2e-batch-${name}-1`,
    label: `${label} batch size 1, end to end`,
    concurrency: BATCH_IN_FLIGHT,
    scale,
    run: (p) => run(p, 1),
  });
  registerCase({
    kind: 'throughput',
    id: `e2e-batch-${name}-100`,
    label: `${label} batch size 100, end to end`,
    concurrency: BATCH_IN_FLIGHT,
    ceiling: `e2e-batch-${name}-1`,
    scale,
    informational: true,
    run: (p) => run(p, 100),
  });
}
