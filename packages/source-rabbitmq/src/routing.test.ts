import { TopicMap } from '@connector/core';
import { describe, expect, it } from 'vitest';
import { amqpMatch, bindingKeyProblem } from './routing.js';

describe('amqpMatch (topic exchange semantics)', () => {
  it.each([
    ['orders.created', 'orders.created', true],
    ['orders.created', 'orders.updated', false],
    ['orders.*', 'orders.created', true],
    ['orders.*', 'orders', false],
    ['orders.*', 'orders.eu.created', false],
    ['*.created', 'orders.created', true],
    ['*', 'orders', true],
    ['*', '', true],
    ['*', 'a.b', false],
    ['orders.#', 'orders', true],
    ['orders.#', 'orders.eu.created', true],
    ['#', '', true],
    ['#', 'anything.at.all', true],
    ['#.created', 'created', true],
    ['#.created', 'orders.eu.created', true],
    ['#.created', 'orders.eu.updated', false],
    ['a.#.z', 'a.z', true],
    ['a.#.z', 'a.b.c.z', true],
    ['a.#.#.z', 'a.z', true],
    ['a.*.#', 'a', false],
    ['a.*.#', 'a.b', true],
    ['a.*.#', 'a.b.c', true],
    ['*.*', 'a.b', true],
    ['orders+', 'orders+', true],
    ['sensors/+/temp', 'sensors/kitchen/temp', false], // MQTT wildcards mean nothing here
    ['a.b*', 'a.bc', false], // '*' only as a whole word
  ])('%j matches %j: %s', (pattern, key, expected) => {
    expect(amqpMatch(pattern, key)).toBe(expected);
  });

  it('routes through core TopicMap as a predicate matcher', () => {
    const fn = (name: string, topics: string[]) => ({
      name,
      namespace: 'openfaas-fn',
      address: `${name}.openfaas-fn`,
      topics,
      annotations: {},
    });
    const map = new TopicMap([fn('created', ['*.created']), fn('eu', ['orders.eu.#'])], amqpMatch);
    const fns = new TopicMap(
      [fn('created', ['*.created']), fn('eu', ['orders.eu.#']), fn('all', ['#'])],
      amqpMatch,
    );
    expect(fns.match('orders.eu.created').map((f) => f.name)).toEqual(['eu', 'all']);
    expect(fns.match('audit.created').map((f) => f.name)).toEqual(['created', 'all']);
    expect(map.match('orders.us.created')).toEqual([]);
    expect(map.match('orders.created.late')).toEqual([]);
  });

  it('refuses binding keys longer than an AMQP short string', () => {
    expect(bindingKeyProblem('a'.repeat(255))).toBeUndefined();
    expect(bindingKeyProblem('a'.repeat(256))).toBe('a binding key of at most 255 bytes');
  });
});
