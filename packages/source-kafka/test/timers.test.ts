import { startGateway } from '@connector/testing';
import { describe, expect, it, vi } from 'vitest';
import { kafkaSuite, waitFor } from './helpers.js';

const { k, cleanup, consume } = kafkaSuite();

describe('timers', () => {
  it('consuming sets no timer with a negative delay (Node >= 23 prints TimeoutNegativeWarning for one)', async () => {
    const topic = 'timers';
    const g = await startGateway({ functions: [{ name: 'fn', annotations: { topic } }] });
    cleanup.add(() => g.close());
    await consume(g, { topics: [topic], group: 'g-timers' });
    // (From here on: the source's client fixed kafkajs's request queue, the test's producer's queues included.)
    const spy = vi.spyOn(globalThis, 'setTimeout');
    cleanup.add(async () => spy.mockRestore());
    await k.produce(
      topic,
      Array.from({ length: 20 }, (_, i) => ({ value: `t-${i}` })),
    );
    await waitFor(() => g.invocations('fn').length === 20, '20 deliveries');
    const delays = spy.mock.calls.map((c) => c[1]).filter((d): d is number => typeof d === 'number');
    expect(delays.length).toBeGreaterThan(0);
    expect(delays.filter((d) => d < 0)).toEqual([]);
  });
});
