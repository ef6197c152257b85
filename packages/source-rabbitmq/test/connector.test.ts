import { type Connector, type ConnectorOptions, createConnector, createController } from '@connector/core';
import { cleanups, startGateway, type TestGateway, waitFor } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { amqpMatch, type RabbitmqSource, type RabbitmqSourceOptions, rabbitmqSource } from '../src/index.js';
import { type Admin, AMQP_URL, admin, closeConnections, unacked, unique } from './helpers/rabbit.js';

// End to end: RabbitMQ -> source -> delivery engine -> @connector/testing gateway -> functions.
const cleanup = cleanups();
afterEach(() => cleanup.run());

async function gateway(...args: Parameters<typeof startGateway>): Promise<TestGateway> {
  const g = await startGateway(...args);
  cleanup.add(() => g.close());
  return g;
}

async function client(): Promise<Admin> {
  const a = await admin();
  cleanup.add(() => a.close());
  return a;
}

/** A connector (AMQP topic matching) with a RabbitMQ source; stopped after the test unless killed. */
async function connector(
  g: TestGateway,
  source: RabbitmqSourceOptions,
  opts: Partial<ConnectorOptions> = {},
): Promise<{ connector: Connector; source: RabbitmqSource }> {
  const controller = createController({
    gatewayUrl: g.url,
    topicMatcher: amqpMatch,
    rebuildInterval: 60_000,
  });
  const s = rabbitmqSource({
    reconnectDelay: { min: 20, max: 200 },
    redeliveryDelay: { min: 20, max: 100 },
    ...source,
  });
  const c = createConnector({
    controller,
    source: s,
    drainTimeout: 5000,
    ...opts,
    retry: { minDelay: 1, maxDelay: 5, ...opts.retry },
  });
  cleanup.add(() => c.stop());
  await c.start();
  return { connector: c, source: s };
}

/** Publish `s-<from>` .. `s-<to - 1>` on `stream.<i % 5>`, confirms awaited together. */
const publishAll = (a: Admin, exchange: string, from: number, to: number) =>
  Promise.all(
    Array.from({ length: to - from }, (_, k) =>
      a.publish(exchange, `stream.${(from + k) % 5}`, `s-${from + k}`, { persistent: false }),
    ),
  );
const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');
const bodiesOf = (g: TestGateway, fn?: string) => g.invocations(fn).map((i) => text(i.body));
const distinct = (g: TestGateway) =>
  new Set(
    g
      .invocations()
      .filter((i) => i.status === 200)
      .map((i) => text(i.body)),
  );

describe('RabbitMQ connector end to end (real broker + test gateway)', () => {
  it('routes by AMQP topic wildcards; headers and content type reach the function', async () => {
    const g = await gateway({
      functions: [
        { name: 'created', annotations: { topic: '*.created' } },
        { name: 'orders', annotations: { topic: 'orders.#' } },
        { name: 'eu', annotations: { topic: 'orders.eu.*' } },
        { name: 'audit', annotations: { topic: 'audit' } },
      ],
    });
    const a = await client();
    const queue = a.queue(unique('q'));
    const exchange = a.exchange(unique('x'));
    const { connector: c, source } = await connector(g, { url: AMQP_URL, queue, exchange });
    expect([...source.bindings()].sort()).toEqual(['*.created', 'audit', 'orders.#', 'orders.eu.*']);
    await a.publish(exchange, 'orders.created', 'oc', {
      contentType: 'application/json',
      headers: { 'x-tenant': 'acme' },
    });
    await a.publish(exchange, 'orders.eu.shipped', 'oes');
    await a.publish(exchange, 'users.created', 'uc');
    await a.publish(exchange, 'audit', 'au');
    await a.publish(exchange, 'audit.login', 'al'); // bound by nothing
    await waitFor(() => g.invocations().length === 6, { message: () => `${g.invocations().length}/6` });
    expect(bodiesOf(g, 'created.openfaas-fn').sort()).toEqual(['oc', 'uc']);
    expect(bodiesOf(g, 'orders.openfaas-fn').sort()).toEqual(['oc', 'oes']);
    expect(bodiesOf(g, 'eu.openfaas-fn')).toEqual(['oes']);
    expect(bodiesOf(g, 'audit.openfaas-fn')).toEqual(['au']);
    const inv = g.invocations('orders.openfaas-fn').find((i) => text(i.body) === 'oc');
    expect(inv?.headers).toMatchObject({
      'x-topic': 'orders.created',
      'content-type': 'application/json',
      'x-tenant': 'acme',
      'x-rabbitmq-routing-key': 'orders.created',
      'x-rabbitmq-exchange': exchange,
      'x-rabbitmq-redelivered': 'false',
      'x-rabbitmq-death-count': '0',
    });
    await c.stop();
    expect(await a.ready(queue)).toBe(0);
  });

  it('a connector killed mid-stream and restarted loses nothing', async () => {
    const g = await gateway({ functions: [{ name: 'count', annotations: { topic: 'stream.*' } }] });
    const a = await client();
    const queue = a.queue(unique('q'));
    const exchange = a.exchange(unique('x'));
    const opts = { url: AMQP_URL, queue, exchange, prefetch: 16 };
    const first = await connector(g, opts);
    const total = 300;
    await publishAll(a, exchange, 0, 150);
    await waitFor(() => g.invocations().length >= 30);
    await first.connector.kill();
    const atKill = distinct(g).size;
    await publishAll(a, exchange, 150, total);
    await connector(g, opts);
    await waitFor(() => distinct(g).size === total, {
      timeout: 30_000,
      message: () => `${distinct(g).size}/${total} delivered (${atKill} before the kill)`,
    });
    expect(atKill).toBeLessThan(total);
  });

  it('backpressure: with a stalled gateway the broker holds exactly prefetch messages un-acked', async () => {
    const g = await gateway({ functions: [{ name: 'slow', annotations: { topic: 'work' } }] });
    g.fault('slow.openfaas-fn', { hang: true });
    const a = await client();
    const queue = a.queue(unique('q'));
    const exchange = a.exchange(unique('x'));
    const prefetch = 5;
    const { source } = await connector(
      g,
      { url: AMQP_URL, queue, exchange, prefetch },
      { maxInFlight: prefetch },
    );
    for (let i = 0; i < 20; i++) await a.publish(exchange, 'work', `w-${i}`);
    await waitFor(() => g.pending() === prefetch);
    expect(await a.ready(queue)).toBe(20 - prefetch);
    expect(await unacked(queue)).toBe(prefetch); // the broker's own count (rabbitmqctl takes seconds)
    // still held after that while: nothing more pushed, nothing acked
    expect(await a.ready(queue)).toBe(20 - prefetch);
    expect(g.pending()).toBe(prefetch);
    expect(source.stats().acked).toBe(0);
    g.fault('slow.openfaas-fn', null);
    g.release();
    await waitFor(() => distinct(g).size === 20);
    await waitFor(() => source.stats().acked === 20);
    expect(await a.ready(queue)).toBe(0);
  });

  it('a poison message (function keeps failing) goes to the dead-letter exchange', async () => {
    const g = await gateway({ functions: [{ name: 'pay', annotations: { topic: 'pay.#' } }] });
    g.fault('pay.openfaas-fn', { status: 503 }); // retryable: the engine retries before giving up
    const a = await client();
    const dlx = a.exchange(unique('dlx'));
    const dlq = a.queue(unique('dlq'));
    await a.channel.assertExchange(dlx, 'topic', { durable: true });
    await a.channel.assertQueue(dlq, { durable: true });
    await a.channel.bindQueue(dlq, dlx, '#');
    const queue = a.queue(unique('q'));
    const exchange = a.exchange(unique('x'));
    const { source } = await connector(
      g,
      { url: AMQP_URL, queue, exchange, deadLetterExchange: dlx },
      { retry: { maxRetries: 2 }, onFailure: 'redeliver' },
    );
    await a.publish(exchange, 'pay.card', 'poison');
    await waitFor(async () => (await a.ready(dlq)) === 1);
    expect(g.invocations('pay.openfaas-fn')).toHaveLength(3); // the engine's retries, then one nack
    expect(source.stats()).toMatchObject({ deadLettered: 1, acked: 0 });
    const dead = await a.channel.get(dlq, { noAck: true });
    expect(dead === false ? undefined : dead.fields.routingKey).toBe('pay.card');
    expect(await a.ready(queue)).toBe(0);
  });

  it("a broker-side close of the connector's connection: reconnects, every id arrives, no ack on a dead channel", async () => {
    const g = await gateway({ functions: [{ name: 'sink', annotations: { topic: 'flow' } }] });
    // the first deliveries hang, so they are in flight (un-acked, on the old channel) when the connection dies
    g.fault('sink.openfaas-fn', { hang: true, times: 4 });
    const a = await client();
    const queue = a.queue(unique('q'));
    const exchange = a.exchange(unique('x'));
    const connectionName = unique('conn');
    const { connector: c, source } = await connector(g, {
      url: AMQP_URL,
      queue,
      exchange,
      prefetch: 4,
      connectionName,
    });
    const total = 100;
    for (let i = 0; i < total; i++) await a.publish(exchange, 'flow', `f-${i}`);
    await waitFor(() => g.pending() === 4);
    // The connector's connection only: the broker is shared with other tests running now.
    expect(await closeConnections(connectionName, 'connector test: broker-side close')).toBe(1);
    await waitFor(() => source.stats().reconnects === 1, { timeout: 20_000 });
    // the 4 held messages were requeued by the broker and come again on the new channel
    await waitFor(() => distinct(g).size === total, {
      timeout: 20_000,
      message: () => `${distinct(g).size}/${total}`,
    });
    g.release(); // the old invocations finally answer 200: their tags died with the old channel
    await waitFor(() => source.stats().stale === 4);
    await waitFor(() => source.stats().acked === total);
    // an ack with a dead tag on the new channel would close it (PRECONDITION_FAILED) and force another reconnect
    expect(source.stats().reconnects).toBe(1);
    expect(source.health?.()).toMatchObject({ connected: true });
    expect(c.ready()).toBe(true);
    await c.stop();
    expect(await a.ready(queue)).toBe(0);
  });
});
