import { randomBytes } from 'node:crypto';
import {
  type Connector,
  type ConnectorOptions,
  createConnector,
  createController,
  type FunctionInfo,
  type Source,
} from '@connector/core';
import { type Cleanups, cleanups } from './cleanups.js';
import { createTestContext, hold, outcomes, type TestContext, type TestContextOptions } from './context.js';
import { startGateway, type TestGateway } from './gateway.js';
import { waitFor } from './wait.js';

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
  /**
   * Optional broker-side view for the backpressure case: how many messages of `topic` the broker has handed to a
   * consumer that were not acknowledged yet (SQS: ApproximateNumberOfMessagesNotVisible; MQTT: QoS 1 messages sent
   * and not PUBACKed; Kafka: fetched past the committed offset). Without it the suite counts `deliver` calls only,
   * which cannot see a source that buffers messages it took from the broker.
   */
  inFlightAtBroker?(topic: string): number | Promise<number>;
  /**
   * The most messages the source may take from its broker while the connector has no capacity (a prefetch, a
   * receive maximum, one poll's batch). Default 10.
   */
  intakeLimit?: number;
  /** Topic for a test (default: unique per test). */
  topicFor?(test: string): string;
  /** What the source can prove; a harness that cannot redeliver (a timer) says so here. */
  capabilities?: { redelivery?: boolean; backpressure?: boolean };
  /** Per-test timeout in ms (default 30 s). */
  timeout?: number;
}

/** One conformance check; `run()` runs it and its cleanups, and rejects when the source breaks the contract. */
export interface ConformanceCase {
  /** What the source must do. */
  readonly name: string;
  /** Run the check, then its cleanups (their errors propagate too). Call `setup()` first. */
  run(): Promise<void>;
}

/** The conformance suite for one harness, as data: run it with any test runner. */
export interface ConformanceSuite {
  /** `source conformance: <harness name>`. */
  readonly name: string;
  /** Per-case timeout, ms. */
  readonly timeout: number;
  /** Run once before the cases (the harness's `setup`). */
  setup(): Promise<void>;
  /** Run once after the cases (the harness's `teardown`). */
  teardown(): Promise<void>;
  /** The cases that apply to this harness (its capabilities and whether it can publish). */
  readonly cases: readonly ConformanceCase[];
}

/** The test-runner functions the suite is registered with (vitest's `describe`, `it`, `beforeAll`, `afterAll` fit). */
export interface SuiteApi {
  describe(name: string, factory: () => void): void;
  it(name: string, fn: () => Promise<void>, timeout?: number): void;
  beforeAll(fn: () => Promise<void>, timeout?: number): void;
  afterAll(fn: () => Promise<void>, timeout?: number): void;
}

/** A conformance rule the source broke. */
export class ConformanceError extends Error {
  override readonly name = 'ConformanceError';
}

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new ConformanceError(message);
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

/** Resolve after `ms`, or as soon as `done()` holds: the observation window of a "this must not happen" check. */
async function observe(ms: number, done: () => boolean | Promise<boolean>): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await done()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ConformanceError(`${what} did not happen within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}

const functionFor = (topic: string): FunctionInfo => ({
  name: 'fn',
  namespace: 'openfaas-fn',
  address: 'fn.openfaas-fn',
  topics: [topic],
  annotations: { topic },
});

/** A source started on a test context (no connector), and how the connector would stop it. */
interface Driven<S extends Source> {
  source: S;
  ctx: TestContext;
  /** What the connector does on stop: close the context (abort the signal, refuse new deliveries), then `stop()`. */
  stop(): Promise<void>;
}

/**
 * Build the contract every @connector source must honour, as runnable cases: delivers to matched functions, acks
 * only settled messages and never after ShutdownError, redelivers after a crash, holds back at the broker without
 * capacity, `stop()` waits for deliveries and ends intake, restarts, reports health.
 */
export function conformanceSuite<S extends Source>(harness: SourceHarness<S>): ConformanceSuite {
  const timeout = harness.timeout ?? 30_000;
  const wait = timeout - Math.min(5_000, timeout / 5);
  const caps = { redelivery: true, backpressure: true, ...harness.capabilities };
  const publish = harness.publish?.bind(harness);
  const intakeLimit = harness.intakeLimit ?? 10;
  let counter = 0;

  const topicFor = (test: string) =>
    harness.topicFor?.(test) ?? `conformance-${test}-${++counter}-${randomBytes(3).toString('hex')}`;

  const newTopic = async (test: string) => {
    const topic = topicFor(test);
    await harness.prepare?.(topic);
    return topic;
  };

  const gateway = async (c: Cleanups, topic: string, options?: Parameters<typeof startGateway>[0]) =>
    c.use(await startGateway(options ?? { functions: [{ name: 'fn', annotations: { topic } }] }), (g) =>
      g.close(),
    );

  const connector = async (
    c: Cleanups,
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
    const conn = createConnector({
      controller,
      source,
      drainTimeout: 2000,
      onFailure: 'redeliver',
      ...opts,
      retry: { maxRetries: 0, minDelay: 1, maxDelay: 5, ...opts.retry },
    });
    c.add(() => conn.kill());
    await conn.start();
    return { connector: conn, source };
  };

  /** Start a new source instance on a test context; the cleanup shuts the context down and stops the source. */
  const drive = async (
    c: Cleanups,
    topic: string,
    group: string,
    options: TestContextOptions = {},
    existing?: S,
  ): Promise<Driven<S>> => {
    const source =
      existing ??
      (await harness.createSource({ topic, group, run: `${group}-${randomBytes(3).toString('hex')}` }));
    const ctx = createTestContext({ topics: [topic], functions: [functionFor(topic)], ...options });
    let stopped: Promise<void> | undefined;
    const stop = () => {
      ctx.close();
      stopped ??= source.stop();
      return stopped;
    };
    c.add(async () => {
      ctx.shutdown(); // a held delivery must not keep stop() waiting in a cleanup
      await within(stop(), wait, `${harness.name}: stop() in cleanup`);
    });
    await source.start(ctx);
    return { source, ctx, stop };
  };

  /** Publish one message (or, for a timer, nothing) and wait until `ctx` was handed it (or any message). */
  const feed = async (d: Driven<S>, topic: string, body: string, settled: boolean) => {
    if (publish) await publish(topic, [{ body }]);
    await waitFor(
      () =>
        publish
          ? (settled ? d.ctx.acked : d.ctx.bodies()).includes(body)
          : (settled ? d.ctx.acked : d.ctx.messages).length > 0,
      {
        timeout: wait,
        message: publish ? `"${body}" to be ${settled ? 'delivered and settled' : 'delivered'}` : 'a message',
      },
    );
  };

  const cases: { name: string; body: (c: Cleanups) => Promise<void> }[] = [];
  const add = (name: string, body: (c: Cleanups) => Promise<void>) => cases.push({ name, body });

  if (publish) {
    add('delivers every published message to the matched function, body intact, with X-Topic', async (c) => {
      const topic = await newTopic('deliver');
      const g = await gateway(c, topic);
      const { connector: conn } = await connector(c, g, topic, `g-${topic}`);
      const bodies = Array.from({ length: 20 }, (_, i) => `message-${i}-${'é'.repeat(i % 3)}`);
      await publish(
        topic,
        bodies.map((body, i) => ({ body, key: `k${i % 4}` })),
      );
      await waitFor(() => delivered(g).size === 20, { timeout: wait, message: '20 distinct deliveries' });
      const got = new Set(g.invocations('fn').map((r) => bodyOf(r.body)));
      const unexpected = [...got].filter((b) => !bodies.includes(b));
      check(
        unexpected.length === 0,
        `delivered bodies that were never published: ${JSON.stringify(unexpected)}`,
      );
      for (const r of g.invocations('fn'))
        check(r.headers['x-topic'] === topic, `X-Topic was ${r.headers['x-topic']}, expected ${topic}`);
      await conn.stop();
    });
  } else {
    add('delivers the messages it produces to the matched function, with X-Topic', async (c) => {
      const topic = await newTopic('deliver');
      const g = await gateway(c, topic);
      const { connector: conn } = await connector(c, g, topic, `g-${topic}`);
      await g.waitForInvocations(3, { fn: 'fn', timeout: wait });
      for (const r of g.invocations('fn'))
        check(r.headers['x-topic'] === topic, `X-Topic was ${r.headers['x-topic']}, expected ${topic}`);
      await conn.stop();
    });
    add('declares that it cannot be redelivered (no broker)', async () => {
      check(
        caps.redelivery === false,
        'a harness without publish must declare capabilities.redelivery: false',
      );
    });
  }

  if (publish && caps.redelivery) {
    add('acks only settled messages: a failed delivery is redelivered by the broker', async (c) => {
      const topic = await newTopic('ack');
      const g = await gateway(c, topic);
      g.fault('fn', { status: 500, times: 1 });
      const { connector: conn } = await connector(c, g, topic, `g-${topic}`);
      await publish(topic, [{ body: 'retry-me' }]);
      await waitFor(() => g.invocations('fn').some((r) => r.status === 200), {
        timeout: wait,
        message: 'redelivery after a failed delivery (the source acked it anyway?)',
      });
      const calls = g.invocations('fn');
      check(
        calls.length >= 2 && calls[0]?.status === 500,
        'the first invocation should have failed with 500',
      );
      check(
        calls.every((r) => bodyOf(r.body) === 'retry-me'),
        'a redelivery carried a different body',
      );
      await conn.stop();
    });

    add('redelivers after a crash what was in flight', async (c) => {
      const topic = await newTopic('crash');
      const g = await gateway(c, topic);
      g.fault('fn', { hang: true });
      const group = `g-${topic}`;
      const first = await connector(c, g, topic, group);
      const bodies = ['crash-0', 'crash-1', 'crash-2'];
      await publish(
        topic,
        bodies.map((body) => ({ body })),
      );
      await g.waitForInvocations(1, { fn: 'fn', timeout: wait });
      await first.connector.kill();
      g.fault('fn', null);
      const before = g.invocations('fn').length;
      const second = await connector(c, g, topic, group);
      await waitFor(
        () => {
          const ok = delivered(g, before);
          return bodies.every((b) => ok.has(b));
        },
        { timeout: wait, message: 'all 3 messages after the restart (acked before delivery settled?)' },
      );
      await second.connector.stop();
    });

    add('does not ack after ShutdownError: the message comes back to the next consumer', async (c) => {
      const topic = await newTopic('shutdown');
      const group = `g-${topic}`;
      const first = await drive(c, topic, group, { answer: hold });
      await feed(first, topic, 'shut-down', false);
      first.ctx.shutdown(); // deliver() rejects with ShutdownError: what connector.kill() does
      await within(first.stop(), wait, 'stop() after ShutdownError');
      const next = await drive(c, topic, group);
      await waitFor(() => next.ctx.acked.includes('shut-down'), {
        timeout: wait,
        message:
          'the message whose delivery was rejected with ShutdownError to reach the next consumer (the source acked it?)',
      });
      await next.stop();
    });
  }

  if (publish && caps.backpressure) {
    add(
      'respects backpressure: never more than maxInFlight invocations while the function stalls',
      async (c) => {
        const topic = await newTopic('backpressure');
        let concurrent = 0;
        let peak = 0;
        let open!: () => void;
        const gate = new Promise<void>((r) => (open = r));
        c.add(() => open());
        const g = await gateway(c, topic, {
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
        const { connector: conn } = await connector(c, g, topic, `g-${topic}`, { maxInFlight: 2 });
        const bodies = Array.from({ length: 10 }, (_, i) => `bp-${i}`);
        await publish(
          topic,
          bodies.map((body) => ({ body })),
        );
        await waitFor(() => concurrent >= 1, { timeout: wait, message: 'the first held invocation' });
        check(conn.inFlight() <= 2, `${conn.inFlight()} in flight with maxInFlight 2`);
        open();
        await waitFor(() => delivered(g).size === 10, { timeout: wait, message: 'all 10 after release' });
        check(peak >= 1 && peak <= 2, `peak concurrency ${peak} with maxInFlight 2`);
        await conn.stop();
      },
    );

    add(
      'takes no more than a bounded number of messages from its broker while it has no capacity',
      async (c) => {
        const topic = await newTopic('intake');
        const controlTopic = await newTopic('intake-control');
        const d = await drive(c, topic, `g-${topic}`);
        // A control consumer on another topic, with capacity: it proves when the broker had handed messages out.
        const control = await drive(c, controlTopic, `g-${controlTopic}`);
        const started = Date.now();
        await feed(d, topic, 'warm-up', true);
        await feed(control, controlTopic, 'warm-up', true);
        const latency = Date.now() - started;
        d.ctx.setCapacity(0);
        const base = d.ctx.messages.length;
        const n = intakeLimit + 20;
        const bodies = Array.from({ length: n }, (_, i) => `intake-${i}`);
        await publish(
          topic,
          bodies.map((body) => ({ body })),
        );
        await publish(controlTopic, [{ body: 'control' }]);
        const brokerInFlight = async () =>
          harness.inFlightAtBroker ? await harness.inFlightAtBroker(topic) : 0;
        const over = async () =>
          d.ctx.messages.length - base > intakeLimit || (await brokerInFlight()) > intakeLimit;
        await waitFor(async () => (await over()) || control.ctx.acked.includes('control'), {
          timeout: wait,
          message: 'the control message published after them to reach the control consumer',
        });
        await observe(Math.max(250, 2 * latency), over);
        const taken = d.ctx.messages.length - base;
        check(
          taken <= intakeLimit,
          `the source called deliver() ${taken} times (of ${n} published) while hasCapacity() was false; at most ${intakeLimit} allowed: it ignores hasCapacity()/waitForCapacity()`,
        );
        const atBroker = await brokerInFlight();
        check(
          atBroker <= intakeLimit,
          `the broker handed out ${atBroker} messages (of ${n} published) while the source had no capacity; at most ${intakeLimit} allowed: it takes messages it cannot deliver`,
        );
        d.ctx.setCapacity(Number.POSITIVE_INFINITY);
        await waitFor(() => bodies.every((b) => d.ctx.acked.includes(b)), {
          timeout: wait,
          message: `all ${n} messages once capacity is back`,
        });
        await control.stop();
        await d.stop();
      },
    );
  }

  add('stop() waits for the deliveries in flight before it resolves', async (c) => {
    const topic = await newTopic('stop-waits');
    const group = `g-${topic}`;
    // Control: how long stop() takes with nothing in flight; the window below is a multiple of it.
    const idle = await drive(c, topic, group);
    await feed(idle, topic, 'warm-up', true);
    const t0 = Date.now();
    await within(idle.stop(), wait, 'stop() with nothing in flight');
    const idleStop = Date.now() - t0;

    const d = await drive(c, topic, group, { answer: hold });
    await feed(d, topic, 'in-flight', false);
    d.ctx.close();
    let stopped = false;
    const stopping = d.stop().then(() => {
      stopped = true;
    });
    const window = Math.max(250, 3 * idleStop);
    await observe(window, () => stopped);
    check(
      !stopped,
      `stop() resolved while a delivery was unsettled (an idle stop() took ${idleStop} ms; watched ${window} ms)`,
    );
    d.ctx.settle(outcomes.delivered());
    await within(stopping, wait, 'stop() once the delivery settled');
  });

  add('stops cleanly through the connector: stop() resolves, nothing stays in flight', async (c) => {
    const topic = await newTopic('stop');
    const g = await gateway(c, topic);
    const { connector: conn } = await connector(c, g, topic, `g-${topic}`);
    if (publish) {
      await publish(topic, [{ body: 'before-stop' }]);
      await waitFor(() => g.invocations('fn').some((r) => r.status === 200), {
        timeout: wait,
        message: 'the first delivery',
      });
    } else {
      await g.waitForInvocations(1, { fn: 'fn', timeout: wait });
    }
    await conn.stop();
    check(conn.inFlight() === 0, `${conn.inFlight()} invocations in flight after stop()`);
    check(conn.pending() === 0, `${conn.pending()} deliveries pending after stop()`);
  });

  add('takes nothing after stop(): what follows goes to the next consumer', async (c) => {
    const topic = await newTopic('after-stop');
    const group = `g-${topic}`;
    const first = await drive(c, topic, group);
    await feed(first, topic, 'before-stop', true);
    await within(first.stop(), wait, 'stop()');
    const atStop = first.ctx.messages.length;
    if (publish) await publish(topic, [{ body: 'after-stop' }]);
    // Control: the next consumer gets what was published after the stop, so the stopped one had every chance to.
    const next = await drive(c, topic, group);
    await waitFor(() => (publish ? next.ctx.acked.includes('after-stop') : next.ctx.acked.length >= 2), {
      timeout: wait,
      message: publish
        ? '"after-stop", published after stop(), to reach the next consumer (the stopped source took it?)'
        : 'two messages from the next instance',
    });
    const late = first.ctx.messages.length - atStop;
    check(late === 0, `the source called deliver() ${late} time(s) after its stop() resolved`);
    await next.stop();
  });

  add('restarts: start() again on the same instance after stop() delivers', async (c) => {
    const topic = await newTopic('restart');
    const group = `g-${topic}`;
    const first = await drive(c, topic, group);
    await feed(first, topic, 'first-run', true);
    await within(first.stop(), wait, 'stop()');
    const second = await drive(c, topic, group, {}, first.source);
    await feed(second, topic, 'second-run', true);
    await second.stop();
  });

  add('reports health(): connected while running, not connected after stop()', async (c) => {
    const topic = await newTopic('health');
    const d = await drive(c, topic, `g-${topic}`);
    const health = d.source.health?.bind(d.source);
    check(
      health !== undefined,
      'the source has no health() (every source reports its connection for /readyz)',
    );
    await feed(d, topic, 'health', true);
    await waitFor(() => health().connected, {
      timeout: wait,
      message: 'health().connected while the source delivers',
    });
    await within(d.stop(), wait, 'stop()');
    check(!health().connected, 'health().connected is still true after stop()');
  });

  return {
    name: `source conformance: ${harness.name}`,
    timeout,
    setup: async () => harness.setup?.(),
    teardown: async () => harness.teardown?.(),
    cases: cases.map(({ name, body }) => ({
      name,
      async run() {
        const c = cleanups();
        try {
          await body(c);
        } catch (err) {
          await c.run().catch((cleanupErr: unknown) => {
            throw new AggregateError([err, cleanupErr], `${errorText(err)} (and its cleanup failed)`);
          });
          throw err;
        }
        await c.run();
      },
    })),
  };
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Register `conformanceSuite(harness)` with a test runner's `describe`/`it` (what `testSource` does). */
export function registerSuite<S extends Source>(harness: SourceHarness<S>, api: SuiteApi): void {
  const suite = conformanceSuite(harness);
  api.describe(suite.name, () => {
    api.beforeAll(() => suite.setup(), suite.timeout);
    api.afterAll(() => suite.teardown(), suite.timeout);
    for (const c of suite.cases) api.it(c.name, () => c.run(), suite.timeout);
  });
}
