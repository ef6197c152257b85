import {
  type Connector,
  type ConnectorOptions,
  type ControllerOptions,
  createConnector,
  createController,
} from '@connector/core';
import { cleanups, startGateway, type TestGateway } from '@connector/testing';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import { afterEach } from 'vitest';
import { type NatsSource, type NatsSourceOptions, natsMatch, natsSource } from '../../src/index.js';
import { client } from './nats.js';

/** Cleanups run after each test, last first. */
export const cleanup = cleanups();
afterEach(() => cleanup.run());

/** A test gateway closed after the test. */
export async function gateway(...args: Parameters<typeof startGateway>): Promise<TestGateway> {
  const g = await startGateway(...args);
  cleanup.add(() => g.close());
  return g;
}

/** A NATS client closed after the test. */
export async function nats(url: string): Promise<NatsConnection> {
  const nc = await client(url);
  cleanup.add(() => nc.close());
  return nc;
}

/** Start a connector (NATS wildcard matching) around a NATS source; stopped after the test. */
export async function connector(
  g: TestGateway,
  options: NatsSourceOptions,
  opts: Partial<ConnectorOptions> = {},
  controllerOptions: Partial<ControllerOptions> = {},
): Promise<{ connector: Connector; source: NatsSource }> {
  const controller = createController({
    gatewayUrl: g.url,
    topicMatcher: natsMatch,
    rebuildInterval: 60_000,
    connectorName: 'nats-test',
    ...controllerOptions,
  });
  const source = natsSource(options);
  const c = createConnector({
    controller,
    source,
    drainTimeout: 5000,
    onFailure: 'redeliver',
    ...opts,
    retry: { maxRetries: 0, minDelay: 1, maxDelay: 5, ...opts.retry },
  });
  cleanup.add(() => c.stop());
  await c.start();
  return { connector: c, source };
}

/** Publish to JetStream (waits for the stream's ack), with optional headers. */
export async function publish(
  nc: NatsConnection,
  subject: string,
  body: string,
  hdrs: Record<string, string> = {},
): Promise<void> {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(hdrs)) h.set(k, v);
  await jetstream(nc).publish(subject, body, Object.keys(hdrs).length > 0 ? { headers: h } : {});
}

/** The consumer's info as the server sees it. */
export async function consumerInfo(nc: NatsConnection, stream: string, consumer: string) {
  const jsm = await jetstreamManager(nc);
  return jsm.consumers.info(stream, consumer);
}

/** Bodies of the invocations `fn` answered with 200. */
export function okBodies(g: TestGateway, fn = 'fn'): Set<string> {
  return new Set(
    g
      .invocations(fn)
      .filter((r) => r.status === 200)
      .map((r) => r.body.toString()),
  );
}

let counter = 0;
/** A unique name for a test's stream, consumer and subjects. */
export function unique(prefix: string): string {
  return `${prefix}${++counter}${Math.random().toString(36).slice(2, 7)}`;
}
