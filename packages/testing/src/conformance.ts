import { randomBytes } from 'node:crypto';
import {
  type Connector,
  type ConnectorOptions,
  createConnector,
  createController,
  type Source,
} from '@connector/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './gateway.js';

/** How the conformance suite drives one source and its broker. */
export interface SourceHarness<S extends Source = Source> {
  /** Shown in test names. */
  name: string;
  /** Start the broker (once, before the tests). */
  setup?(): Promise<void>;
  /** Stop the broker (once, after the tests). */
  teardown?(): Promise<void>;
  /** Create what a topic needs at the broker (an SQS queue, a Kafka topic) before the source is created. */
  prepare?(topic: string): Promise<void>;
  /** A new source instance consuming `topic`; `group` is stable within a test (client id, consumer group). */
  createSource(ctx: { topic: string; run: string; group: string }): S | Promise<S>;
  /** Publish messages on `topic`; absent when the source produces messages itself (a timer). */
  publish?(topic: string, messages: { body: string; key?: string }[]): Promise<void>;
  /** Topic for a test (default: unique per test). */
  topicFor?(test: string): string;
  /** What the source can prove; a harness that cannot redeliver (a timer) says so here. */
  capabilities?: { redelivery?: boolean; backpressure?: boolean };
  /** Per-test timeout in ms (default 30 s). */
  timeout?: number;
}

const bodyOf = (b: Buffer) => b.toString('utf8');

/** Distinct bodies the function answered 200 for (optionally only among invocations after `from`). */
const delivered = (g: TestGateway, from = 0): Set<string> =>
  new Set(
    g
      .invocations('fn')
      .slice(from)
      .filter((r) => r.status === 200)
      .map((r) => bodyOf(r.body)),
  );

async function waitUntil(cond: () => boolean, what: string, timeout: number): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`conformance: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Register the contract every @connector source must honour (vitest): delivers to matched functions, acks only
 * settled messages, redelivers after a crash, respects backpressure, stops cleanly.
 */
export function testSource<S extends Source>(harness: SourceHarness<S>): void {
  const timeout = harness.timeout ?? 30_000;
  const wait = Math.max(5_000, timeout - 5_000);
  const caps = { redelivery: true, backpressure: true, ...harness.capabilities };
  const publish = harness.publish?.bind(harness);
  let counter = 0;
  const cleanups: (() => Promise<unknown>)[] = [];

  const topicFor = (test: string) =>
    harness.topicFor?.(test) ?? `conformance-${test}-${++counter}-${randomBytes(3).toString('hex')}`;

  const gateway = async (topic: string, handler?: Parameters<typeof startGateway>[0]) => {
    const g = await startGateway(handler ?? { functions: [{ name: 'fn', annotations: { topic } }] });
    cleanups.push(() => g.close());
    return g;
  };

  const connector = async (
    g: TestGateway,
    topic: string,
    group: string,
    opts: Partial<ConnectorOptions> = {},
  ): Promise<{ connector: Connector; source: S }> => {
    const controller = createController({ gatewayUrl: g.url, rebuildInterval: 1000 });
    const source = await harness.createSource({
      topic,
      group,
      run: `${group}-${randomBytes(3).toString('hex')}`,
    });
    const c = createConnector({
      controller,
      source,
      drainTimeout: 2000,
      onFailure: 'redeliver',
      ...opts,
      retry: { maxRetries: 0, minDelay: 1, maxDelay: 5, ...opts.retry },
    });
    cleanups.push(() => c.kill());
    await c.start();
    return { connector: c, source };
  };

  describe(`source conformance: ${harness.name}`, () => {
    beforeAll(async () => {
      await harness.setup?.();
    }, timeout);
    afterAll(async () => {
      await harness.teardown?.();
    }, timeout);
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
    }, timeout);

    if (publish) {
      it(
        'delivers every published message to the matched function, body intact, with X-Topic',
        async () => {
          const topic = topicFor('deliver');
          await harness.prepare?.(topic);
          const g = await gateway(topic);
          const { connector: c } = await connector(g, topic, `g-${topic}`);
          const bodies = Array.from({ length: 20 }, (_, i) => `message-${i}-${'é'.repeat(i % 3)}`);
          await publish(
            topic,
            bodies.map((body, i) => ({ body, key: `k${i % 4}` })),
          );
          await waitUntil(() => delivered(g).size === 20, '20 distinct deliveries', wait);
          const got = g.invocations('fn').map((r) => bodyOf(r.body));
          expect(new Set(got)).toEqual(new Set(bodies));
          for (const r of g.invocations('fn')) expect(r.headers['x-topic']).toBe(topic);
          await c.stop();
        },
        timeout,
      );
    } else {
      it(
        'delivers the messages it produces to the matched function, with X-Topic',
        async () => {
          const topic = topicFor('deliver');
          await harness.prepare?.(topic);
          const g = await gateway(topic);
          const { connector: c } = await connector(g, topic, `g-${topic}`);
          await g.waitForInvocations(3, { fn: 'fn', timeout: wait });
          for (const r of g.invocations('fn')) expect(r.headers['x-topic']).toBe(topic);
          await c.stop();
        },
        timeout,
      );
      it('declares that it cannot be redelivered (no broker)', () => {
        expect(caps.redelivery).toBe(false);
      });
    }

    if (publish && caps.redelivery) {
      it(
        'acks only settled messages: a failed delivery is redelivered by the broker',
        async () => {
          const topic = topicFor('ack');
          await harness.prepare?.(topic);
          const g = await gateway(topic);
          g.fault('fn', { status: 500, times: 1 });
          const { connector: c } = await connector(g, topic, `g-${topic}`);
          await publish(topic, [{ body: 'retry-me' }]);
          await waitUntil(
            () => g.invocations('fn').some((r) => r.status === 200),
            'redelivery after a failure',
            wait,
          );
          const calls = g.invocations('fn');
          expect(calls.length).toBeGreaterThanOrEqual(2);
          expect(calls[0]?.status).toBe(500);
          expect(calls.every((r) => bodyOf(r.body) === 'retry-me')).toBe(true);
          await c.stop();
        },
        timeout,
      );

      it(
        'redelivers after a crash what was in flight',
        async () => {
          const topic = topicFor('crash');
          await harness.prepare?.(topic);
          const g = await gateway(topic);
          g.fault('fn', { hang: true });
          const group = `g-${topic}`;
          const first = await connector(g, topic, group);
          const bodies = ['crash-0', 'crash-1', 'crash-2'];
          await publish(
            topic,
            bodies.map((body) => ({ body })),
          );
          await g.waitForInvocations(1, { fn: 'fn', timeout: wait });
          await first.connector.kill();
          g.fault('fn', null);
          const before = g.invocations('fn').length;
          const second = await connector(g, topic, group);
          await waitUntil(
            () => {
              const ok = delivered(g, before);
              return bodies.every((b) => ok.has(b));
            },
            'all 3 messages after the restart',
            wait,
          );
          await second.connector.stop();
        },
        timeout,
      );
    }

    if (publish && caps.backpressure) {
      it(
        'respects backpressure: never more than maxInFlight invocations while the function stalls',
        async () => {
          const topic = topicFor('backpressure');
          await harness.prepare?.(topic);
          let concurrent = 0;
          let peak = 0;
          let open!: () => void;
          const gate = new Promise<void>((r) => (open = r));
          const g = await gateway(topic, {
            functions: [
              {
                name: 'fn',
                annotations: { topic },
                handler: async () => {
                  peak = Math.max(peak, ++concurrent);
                  await gate;
                  concurrent--;
                  return { body: 'ok' };
                },
              },
            ],
          });
          const { connector: c } = await connector(g, topic, `g-${topic}`, { maxInFlight: 2 });
          const bodies = Array.from({ length: 10 }, (_, i) => `bp-${i}`);
          await publish(
            topic,
            bodies.map((body) => ({ body })),
          );
          await waitUntil(() => concurrent >= 1, 'the first held invocation', wait);
          expect(c.inFlight()).toBeLessThanOrEqual(2);
          open();
          await waitUntil(() => delivered(g).size === 10, 'all 10 after release', wait);
          expect(peak).toBeGreaterThanOrEqual(1);
          expect(peak).toBeLessThanOrEqual(2);
          await c.stop();
        },
        timeout,
      );
    }

    it(
      'stops cleanly: stop() resolves, nothing stays in flight, nothing arrives afterwards',
      async () => {
        const topic = topicFor('stop');
        await harness.prepare?.(topic);
        const g = await gateway(topic);
        const group = `g-${topic}`;
        const { connector: c, source } = await connector(g, topic, group);
        if (publish) {
          await publish(topic, [{ body: 'before-stop' }]);
          await waitUntil(
            () => g.invocations('fn').some((r) => r.status === 200),
            'the first delivery',
            wait,
          );
        } else {
          await g.waitForInvocations(1, { fn: 'fn', timeout: wait });
        }
        await c.stop();
        expect(c.inFlight()).toBe(0);
        expect(c.pending()).toBe(0);
        if (source.health) expect(source.health().connected).toBe(false);
        const after = g.invocations('fn').length;
        if (publish) {
          // Published after the stop: only a new connector may deliver it, and it does.
          await publish(topic, [{ body: 'after-stop' }]);
          expect(g.invocations('fn').length).toBe(after);
          const next = await connector(g, topic, group);
          await waitUntil(
            () => g.invocations('fn').some((r) => bodyOf(r.body) === 'after-stop'),
            'after-stop delivery',
            wait,
          );
          await next.connector.stop();
        }
      },
      timeout,
    );
  });
}
