import type { DeliveryOutcome } from '@connector/core';
import {
  cleanups,
  createTestContext,
  deferred,
  outcomes,
  type TestContext,
  waitFor,
} from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type RabbitmqSourceOptions, rabbitmqSource } from '../src/index.js';
import { type Admin, AMQP_URL, admin, unique } from './helpers/rabbit.js';

// The source on its own against the real RabbitMQ, driven by a hand-written context (the connector's side).
const cleanup = cleanups();
afterEach(() => cleanup.run());

async function client(): Promise<Admin> {
  const a = await admin();
  cleanup.add(() => a.close());
  return a;
}

/** A source on a fresh queue and exchange (both deleted after the test). */
async function setup(
  a: Admin,
  opts: Partial<RabbitmqSourceOptions> = {},
  ctx: TestContext = createTestContext(),
) {
  const queue = a.queue(unique('q'));
  const exchange = a.exchange(unique('x'));
  const source = rabbitmqSource({
    url: AMQP_URL,
    queue,
    exchange,
    redeliveryDelay: { min: 20, max: 50 },
    reconnectDelay: { min: 20, max: 100 },
    ...opts,
  });
  cleanup.add(() => source.stop());
  await source.start(ctx);
  return { source, ctx, queue, exchange };
}

const bodies = (ctx: TestContext) => ctx.messages.map((m) => Buffer.from(m.body).toString());

describe('RabbitMQ source', () => {
  it("binds the functions' topics and follows the topic map: new keys bound, removed ones unbound", async () => {
    const a = await client();
    const ctx = createTestContext({ topics: ['orders.*'] });
    const { source, exchange } = await setup(a, {}, ctx);
    expect(source.bindings()).toEqual(['orders.*']);
    await a.publish(exchange, 'orders.created', 'o1');
    await waitFor(() => ctx.acked.length === 1);
    ctx.setTopics(['audit.#']);
    await waitFor(() => source.bindings().join() === 'audit.#');
    await a.publish(exchange, 'orders.updated', 'o2'); // no binding any more: unroutable, dropped by the exchange
    await a.publish(exchange, 'audit.eu.login', 'a1');
    await waitFor(() => ctx.acked.length === 2);
    expect(bodies(ctx)).toEqual(['o1', 'a1']);
    expect(ctx.messages.map((m) => m.topic)).toEqual(['orders.created', 'audit.eu.login']);
    expect(ctx.messages[1]?.headers?.['X-Rabbitmq-Exchange']).toBe(exchange);
  });

  it('acks only settled deliveries; a ShutdownError leaves the message un-acked, so the broker keeps it', async () => {
    const a = await client();
    const hold = deferred<DeliveryOutcome>();
    const ctx = createTestContext({ topics: ['jobs'], answer: () => hold.promise });
    const { source, queue, exchange } = await setup(a, {}, ctx);
    await a.publish(exchange, 'jobs', 'j1', { contentType: 'application/json', messageId: 'id-1' });
    await waitFor(() => ctx.open() === 1);
    expect(ctx.messages[0]).toMatchObject({ topic: 'jobs', contentType: 'application/json', id: 'id-1' });
    expect(await a.ready(queue)).toBe(0); // delivered to us, not acked
    ctx.shutdown(); // the connector stops before the delivery settled
    await source.stop();
    expect(await a.ready(queue)).toBe(1); // back in the queue

    const next = createTestContext({ topics: ['jobs'] });
    const again = rabbitmqSource({ url: AMQP_URL, queue, exchange });
    cleanup.add(() => again.stop());
    await again.start(next);
    await waitFor(() => next.acked.length === 1);
    expect(next.messages[0]?.headers?.['X-Rabbitmq-Redelivered']).toBe('true');
    await again.stop();
    expect(await a.ready(queue)).toBe(0);
    expect(again.stats()).toMatchObject({ acked: 1, requeued: 0, stale: 0 });
  });

  it('acks of later messages settled together never cover one still in delivery (cumulative ack stops below it)', async () => {
    const a = await client();
    const hold = deferred<DeliveryOutcome>();
    const ctx = createTestContext({
      topics: ['jobs'],
      answer: (m) => (Buffer.from(m.body).toString() === 'slow' ? hold.promise : outcomes.delivered()),
    });
    const { source, queue, exchange } = await setup(a, {}, ctx);
    await a.publish(exchange, 'jobs', 'first');
    await waitFor(() => source.stats().acked === 1);
    await a.publish(exchange, 'jobs', 'slow');
    for (let i = 0; i < 20; i++) await a.publish(exchange, 'jobs', `fast-${i}`);
    await waitFor(() => source.stats().acked === 21);
    expect(ctx.open()).toBe(1); // 'slow' still in delivery, 20 acked above it
    ctx.shutdown(); // the connector stops before 'slow' settled: it must still be the broker's
    await source.stop();
    expect(await a.ready(queue)).toBe(1);
    const next = createTestContext({ topics: ['jobs'] });
    const again = rabbitmqSource({ url: AMQP_URL, queue, exchange });
    cleanup.add(() => again.stop());
    await again.start(next);
    await waitFor(() => next.acked.length === 1);
    expect(bodies(next)).toEqual(['slow']); // and only it: every ack of the first run reached the broker
    await again.stop();
    expect(await a.ready(queue)).toBe(0);
  });

  it('stop() during a delivery: it settles, and its ack reaches the broker before the channel closes', async () => {
    const a = await client();
    const hold = deferred<DeliveryOutcome>();
    const ctx = createTestContext({ topics: ['jobs'], answer: () => hold.promise });
    const { source, queue, exchange } = await setup(a, {}, ctx);
    await a.publish(exchange, 'jobs', 'j1');
    await waitFor(() => ctx.open() === 1);
    const stopped = source.stop(); // cancels the consumer, then waits for the delivery in flight
    await waitFor(async () => (await a.consumers(queue)) === 0);
    // settles now, while stop() waits for it: its ack and the channel close come in the same turn
    hold.resolve(outcomes.delivered());
    await stopped;
    expect(source.stats()).toMatchObject({ acked: 1, stale: 0 });
    expect(await a.ready(queue)).toBe(0); // acked, not put back by the close
  });

  it('a failed delivery is requeued only after the back-off (no hot loop), then redelivered', async () => {
    const a = await client();
    const ctx = createTestContext({ topics: ['jobs'], answer: () => outcomes.failed() });
    const { source, queue, exchange } = await setup(a, { redeliveryDelay: { min: 60_000 } }, ctx);
    await a.publish(exchange, 'jobs', 'j1');
    await waitFor(() => ctx.messages.length === 1 && ctx.open() === 0);
    // settled as failed: the source waits before the nack-requeue, holding the message meanwhile
    expect(source.pending()).toBe(1);
    expect(source.stats().requeued).toBe(0);
    expect(await a.ready(queue)).toBe(0);
    await source.stop(); // ends the back-off; the channel close puts the message back
    expect(ctx.messages).toHaveLength(1);
    expect(await a.ready(queue)).toBe(1);

    let n = 0;
    const retry = createTestContext({
      topics: ['jobs'],
      answer: () => (++n === 1 ? outcomes.failed() : outcomes.delivered()),
    });
    const again = rabbitmqSource({ url: AMQP_URL, queue, exchange, redeliveryDelay: { min: 10, max: 20 } });
    cleanup.add(() => again.stop());
    await again.start(retry);
    await waitFor(() => retry.acked.length === 1);
    expect(retry.messages.map((m) => m.headers?.['X-Rabbitmq-Redelivered'])).toEqual(['true', 'true']);
    expect(again.stats()).toMatchObject({ acked: 1, requeued: 1 });
  });

  it('a failed delivery goes to the dead-letter exchange, with x-death and X-Rabbitmq-Death-Count', async () => {
    const a = await client();
    const dlx = a.exchange(unique('dlx'));
    const dlq = a.queue(unique('dlq'));
    await a.channel.assertExchange(dlx, 'fanout', { durable: true });
    await a.channel.assertQueue(dlq, { durable: true });
    await a.channel.bindQueue(dlq, dlx, '');
    const ctx = createTestContext({ topics: ['pay.*'], answer: () => outcomes.failed() });
    const { source, queue, exchange } = await setup(a, { deadLetterExchange: dlx }, ctx);
    await a.publish(exchange, 'pay.eu', 'poison', { headers: { 'x-tenant': 'acme' } });
    await waitFor(async () => (await a.ready(dlq)) === 1);
    expect(source.stats()).toMatchObject({ deadLettered: 1, requeued: 0, acked: 0 });
    expect(await a.ready(queue)).toBe(0);
    const dead = await a.channel.get(dlq, { noAck: true });
    if (!dead) throw new Error('no dead letter');
    expect(dead.content.toString()).toBe('poison');
    expect(dead.properties.headers?.['x-tenant']).toBe('acme');
    const xDeath = dead.properties.headers?.['x-death'] as { reason: string; queue: string; count: number }[];
    expect(xDeath[0]).toMatchObject({ reason: 'rejected', queue, count: 1 });
    // shovelled back by hand: the function sees how often it died
    await a.publish(exchange, 'pay.eu', dead.content, { headers: dead.properties.headers ?? {} });
    await waitFor(() => ctx.messages.length === 2);
    expect(ctx.messages[1]?.headers?.['X-Rabbitmq-Death-Count']).toBe('1');
  });

  it('quorum queue with a delivery limit: requeued with back-off, dead-lettered by the broker over the limit', async () => {
    const a = await client();
    const dlx = a.exchange(unique('dlx'));
    const dlq = a.queue(unique('dlq'));
    await a.channel.assertExchange(dlx, 'fanout', { durable: true });
    await a.channel.assertQueue(dlq, { durable: true });
    await a.channel.bindQueue(dlq, dlx, '');
    const ctx = createTestContext({ topics: ['jobs'], answer: () => outcomes.failed() });
    const { source, exchange } = await setup(
      a,
      { queueType: 'quorum', deliveryLimit: 2, deadLetterExchange: dlx },
      ctx,
    );
    await a.publish(exchange, 'jobs', 'poison');
    await waitFor(async () => (await a.ready(dlq)) === 1);
    // the first delivery and the redeliveries the limit allows, each counted by the broker
    expect(ctx.messages.map((m) => m.headers?.['x-delivery-count'])).toEqual([undefined, '1', '2']);
    expect(source.stats()).toMatchObject({ requeued: 3, deadLettered: 0 });
  });

  it('its queue deleted under it: reconnects, declares and binds it again, consumes on', async () => {
    const a = await client();
    const ctx = createTestContext({ topics: ['jobs'] });
    const { source, queue, exchange } = await setup(a, {}, ctx);
    await a.publish(exchange, 'jobs', 'before');
    await waitFor(() => ctx.acked.length === 1);
    await a.channel.deleteQueue(queue); // the broker cancels the consumer
    await waitFor(() => source.stats().reconnects === 1);
    expect(await a.consumers(queue)).toBe(1);
    await a.publish(exchange, 'jobs', 'after');
    await waitFor(() => ctx.acked.length === 2);
    expect(bodies(ctx)).toEqual(['before', 'after']);
  });

  it('refuses a queue that exists with other arguments: ERR_BROKER, not retryable', async () => {
    const a = await client();
    const queue = a.queue(unique('q'));
    await a.channel.assertQueue(queue, { durable: true, arguments: { 'x-max-length': 10 } });
    const source = rabbitmqSource({ url: AMQP_URL, queue });
    await expect(source.start(createTestContext())).rejects.toMatchObject({
      code: 'ERR_BROKER',
      canRetry: false,
      brokerCode: 'PRECONDITION_FAILED',
      message: expect.stringMatching(/^declaring queue test\.q\..*PRECONDITION_FAILED/),
    });
    expect(source.health?.().connected).toBe(false);
  });

  it('refuses wrong credentials: ERR_BROKER_AUTH, not retryable, password never in the message', async () => {
    const source = rabbitmqSource({ url: 'amqp://guest:hunter2@127.0.0.1:5672' });
    const err = await source
      .start(createTestContext())
      .catch((e: unknown) => e as Error & { code: string; canRetry: boolean });
    expect(err).toMatchObject({ code: 'ERR_BROKER_AUTH', canRetry: false, brokerCode: 'ACCESS_REFUSED' });
    expect(err?.message).not.toContain('hunter2');
    expect(JSON.stringify(source.options)).not.toContain('hunter2');
    expect(JSON.stringify(source.health?.())).not.toContain('hunter2');
    expect(source.health?.().lastError).toMatch(/ACCESS.REFUSED/);
  });

  it('reply-to: replies only to queues the allow-list names, with the correlation id', async () => {
    const a = await client();
    const allowed = a.queue(unique('replies'));
    const other = a.queue(unique('elsewhere'));
    await a.channel.assertQueue(allowed, { durable: false });
    await a.channel.assertQueue(other, { durable: false });
    const ctx = createTestContext({
      topics: ['rpc.echo'],
      answer: (m) => outcomes.delivered(`echo:${Buffer.from(m.body)}`),
    });
    const { source, exchange } = await setup(a, { replyTo: { allow: ['test.replies.#'] } }, ctx);
    await a.publish(exchange, 'rpc.echo', 'ping', { replyTo: allowed, correlationId: 'c-1' });
    await a.publish(exchange, 'rpc.echo', 'sneaky', { replyTo: other, correlationId: 'c-2' });
    await waitFor(() => ctx.acked.length === 2);
    expect(source.stats().replies).toBe(1);
    const reply = await a.channel.get(allowed, { noAck: true });
    if (!reply) throw new Error('no reply');
    expect(reply.content.toString()).toBe('echo:ping');
    expect(reply.properties.correlationId).toBe('c-1');
    expect(reply.properties.contentType).toBe('text/plain');
    expect(reply.properties.headers?.['X-Function-Status']).toBe(200);
    expect(await a.ready(other)).toBe(0);
  });

  it('queues mode (OpenFaaS Pro): consumes the named queues and routes on the queue name', async () => {
    const a = await client();
    const q1 = a.queue(unique('pro1'));
    const q2 = a.queue(unique('pro2'));
    const ctx = createTestContext();
    const source = rabbitmqSource({ url: AMQP_URL, queues: [q1, { name: q2, durable: false }] });
    cleanup.add(() => source.stop());
    await source.start(ctx);
    await a.publish('', q1, 'one');
    await a.publish('', q2, 'two');
    await waitFor(() => ctx.acked.length === 2);
    expect(ctx.messages.map((m) => m.topic).sort()).toEqual([q1, q2].sort());
    expect(source.bindings()).toEqual([]);
  });
});
