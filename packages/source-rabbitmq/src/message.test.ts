import type { ConsumeMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { deathCount, headerValue, toSourceMessage } from './message.js';
import type { ResolvedQueue } from './options.js';

const queue: ResolvedQueue = {
  name: 'q',
  durable: true,
  autoDelete: false,
  exclusive: false,
  arguments: {},
  bound: true,
};

function msg(
  properties: Record<string, unknown>,
  fields: Partial<ConsumeMessage['fields']> = {},
): ConsumeMessage {
  return {
    content: Buffer.from('body'),
    fields: {
      deliveryTag: 1,
      redelivered: false,
      exchange: 'events',
      routingKey: 'orders.created',
      consumerTag: 'c',
      ...fields,
    },
    properties: { headers: {}, ...properties } as ConsumeMessage['properties'],
  };
}

describe('toSourceMessage', () => {
  it("takes the publisher's AMQP timestamp (seconds) as the message time in ms, and none when absent", () => {
    expect(toSourceMessage(msg({ timestamp: 1_700_000_000 }), queue).timestamp).toBe(1_700_000_000_000);
    expect(toSourceMessage(msg({}), queue).timestamp).toBeUndefined();
  });

  it('routes on the routing key, hands headers over raw and adds the X-Rabbitmq-* headers', () => {
    const m = toSourceMessage(
      msg({
        contentType: 'application/json',
        messageId: 'm-1',
        headers: {
          traceparent: '00-abc-01',
          'x-retries': 3,
          'x-flag': true,
          'x-bytes': Buffer.from([0, 1]),
          'bad name': 'é',
        },
      }),
      queue,
    );
    expect(m.topic).toBe('orders.created');
    expect(m.contentType).toBe('application/json');
    expect(m.id).toBe('m-1');
    expect(m.headers).toEqual({
      traceparent: '00-abc-01',
      'x-retries': '3',
      'x-flag': 'true',
      'x-bytes': Buffer.from([0, 1]),
      'bad name': 'é', // core's header policy decides; the source does not filter
      'X-Rabbitmq-Routing-Key': 'orders.created',
      'X-Rabbitmq-Exchange': 'events',
      'X-Rabbitmq-Redelivered': 'false',
      'X-Rabbitmq-Death-Count': '0',
    });
  });

  it('routes a queue consumed as it is on the queue name', () => {
    expect(toSourceMessage(msg({}), { ...queue, bound: false }).topic).toBe('q');
  });

  it('counts x-death entries and reports redelivery', () => {
    const xDeath = [
      { count: 2, reason: 'rejected', queue: 'q', exchange: 'events', 'routing-keys': ['orders.created'] },
      { count: 1, reason: 'expired', queue: 'retry', exchange: '', 'routing-keys': ['q'] },
    ];
    expect(deathCount({ 'x-death': xDeath })).toBe(3);
    const m = toSourceMessage(msg({ headers: { 'x-death': xDeath } }, { redelivered: true }), queue);
    expect(m.headers?.['X-Rabbitmq-Death-Count']).toBe('3');
    expect(m.headers?.['X-Rabbitmq-Redelivered']).toBe('true');
    expect(JSON.parse(String(m.headers?.['x-death']))[0].count).toBe(2);
  });

  it('renders values HTTP has no type for as text', () => {
    expect(headerValue(null)).toBeUndefined();
    expect(headerValue(10n)).toBe('10');
    expect(headerValue(new Date(0))).toBe('1970-01-01T00:00:00.000Z');
    expect(headerValue({ a: [1, 'b'] })).toBe('{"a":[1,"b"]}');
  });
});
