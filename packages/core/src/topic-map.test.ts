import { describe, expect, it } from 'vitest';
import { mqttMatch, parseTopics, TopicMap } from './topic-map.js';
import type { FunctionInfo } from './types.js';

const fn = (name: string, topic: string, namespace = 'openfaas-fn', delimiter = ','): FunctionInfo => ({
  name,
  namespace,
  address: `${name}.${namespace}`,
  topics: parseTopics(topic, delimiter),
  annotations: { topic },
});
const names = (fns: readonly FunctionInfo[]) => fns.map((f) => f.name).sort();

describe('parseTopics', () => {
  it.each([
    ['payments', ['payments']],
    ['payments, refunds,', ['payments', 'refunds']],
    [' a ,, b ,a', ['a', 'b']],
    [',', []],
    ['', []],
    ['  ', []],
  ])('%j -> %j', (v, out) => expect(parseTopics(v)).toEqual(out));

  it('honours another delimiter and keeps commas then', () => {
    expect(parseTopics('a,b;c ; ', ';')).toEqual(['a,b', 'c']);
    expect(parseTopics('a||b', '||')).toEqual(['a', 'b']);
  });

  it('returns nothing when there is no annotation', () => expect(parseTopics(undefined)).toEqual([]));
});

describe('mqttMatch', () => {
  it.each([
    ['sensors/+/temp', 'sensors/kitchen/temp', true],
    ['sensors/+/temp', 'sensors/kitchen/hall/temp', false],
    ['sensors/#', 'sensors/kitchen/temp', true],
    ['sensors/#', 'sensors', true],
    ['#', 'anything/at/all', true],
    ['#', '$SYS/broker', false],
    ['+/broker', '$SYS/broker', false],
    ['$SYS/#', '$SYS/broker', true],
    ['a/b', 'a/b', true],
    ['a/+', 'a', false],
    ['+', 'a/b', false],
    ['a/+/+', 'a//x', true],
  ])('%s ~ %s = %s', (filter, topic, expected) => expect(mqttMatch(filter, topic)).toBe(expected));
});

describe('TopicMap', () => {
  it('exact: looks topics up, each function once', () => {
    const m = new TopicMap([fn('a', 'orders,orders , audit'), fn('b', 'orders'), fn('c', 'other')]);
    expect(names(m.match('orders'))).toEqual(['a', 'b']);
    expect(names(m.match('audit'))).toEqual(['a']);
    expect(m.match('none')).toEqual([]);
    expect(m.topics()).toEqual(['audit', 'orders', 'other']);
    expect(m.size).toBe(3);
  });

  it('exact: wildcards are literal', () => {
    const m = new TopicMap([fn('a', 'sensors/#')]);
    expect(m.match('sensors/x')).toEqual([]);
    expect(names(m.match('sensors/#'))).toEqual(['a']);
  });

  it('mqtt: + and # in annotations, $-topics excluded from leading wildcards, no duplicates', () => {
    const m = new TopicMap(
      [
        fn('plus', 'sensors/+/temp'),
        fn('hash', 'sensors/#'),
        fn('exact', 'sensors/kitchen/temp'),
        fn('all', '#'),
        fn('both', 'sensors/+/temp,sensors/#'),
      ],
      'mqtt',
    );
    expect(names(m.match('sensors/kitchen/temp'))).toEqual(['all', 'both', 'exact', 'hash', 'plus']);
    expect(names(m.match('sensors'))).toEqual(['all', 'both', 'hash']);
    expect(names(m.match('other/x'))).toEqual(['all']);
    expect(m.match('$SYS/load')).toEqual([]);
  });

  it('mqtt: agrees with mqttMatch on a grid of filters and topics', () => {
    const filters = ['a/+', 'a/#', '+/b', '#', 'a/b/c', '+/+/+', 'a/+/c', '$SYS/#', '+/+'];
    const topics = ['a', 'a/b', 'a/b/c', 'x/b', '$SYS/x', 'a/x/c', 'a//c', '/b'];
    const m = new TopicMap(
      filters.map((f, i) => fn(`f${i}`, f)),
      'mqtt',
    );
    for (const t of topics) {
      const expected = filters.flatMap((f, i) => (mqttMatch(f, t) ? [`f${i}`] : [])).sort();
      expect(names(m.match(t)), t).toEqual(expected);
    }
  });

  it('custom predicate', () => {
    const m = new TopicMap([fn('re', 'ord.*'), fn('x', 'x')], (pattern, topic) =>
      new RegExp(`^${pattern}$`).test(topic),
    );
    expect(names(m.match('orders'))).toEqual(['re']);
    expect(names(m.match('x'))).toEqual(['x']);
    expect(m.match('y')).toEqual([]);
  });
});

describe('TopicMap.subscriptions (the bounded label of a message)', () => {
  it('exact: the topic when a function names it, else none', () => {
    const map = new TopicMap([fn('a', 'orders,payments'), fn('b', 'orders')]);
    expect(map.subscriptions('orders')).toEqual(['orders']);
    expect(map.subscriptions('orders/1')).toEqual([]);
  });

  it('mqtt: every filter that matches, each once, never the concrete topic', () => {
    const map = new TopicMap(
      [fn('a', 'sensors/+/temp,sensors/#'), fn('b', 'sensors/#'), fn('c', 'sensors/x/temp')],
      'mqtt',
    );
    expect([...map.subscriptions('sensors/x/temp')].sort()).toEqual([
      'sensors/#',
      'sensors/+/temp',
      'sensors/x/temp',
    ]);
    expect([...map.subscriptions('sensors/dev-9/temp')].sort()).toEqual(['sensors/#', 'sensors/+/temp']);
    expect(map.subscriptions('other/dev-9')).toEqual([]);
  });

  it('a custom matcher: the patterns it accepts', () => {
    const map = new TopicMap([fn('a', 'ord*,pay*')], (p, t) => t.startsWith(p.slice(0, -1)));
    expect(map.subscriptions('orders-17')).toEqual(['ord*']);
    expect(map.subscriptions('refunds')).toEqual([]);
  });
});
