import { afterEach, describe, expect, it, vi } from 'vitest';
import { Batcher } from '../src/batcher.js';
import type { FunctionPolicy } from '../src/policy.js';
import type { BatchItem, FunctionInfo, InvokeResult } from '../src/types.js';

afterEach(() => {
  vi.useRealTimers();
});

const fn = { address: 'f.openfaas-fn', name: 'f', namespace: 'openfaas-fn' } as FunctionInfo;
const policy = (window: number) =>
  ({
    batch: { size: 2, bytes: Number.POSITIVE_INFINITY, window },
    retryOn: new Set(),
  }) as unknown as FunctionPolicy;

/** A batcher whose invoker records each batch (its items' topics) and when it was sent. */
function recording() {
  const sent: { at: number; topics: string[] }[] = [];
  const b = new Batcher(
    fn,
    {
      invokeBatch: async (_t, items: readonly BatchItem[]) => {
        sent.push({ at: Date.now(), topics: items.map((i) => i.topic) });
        return items.map((i) => ({ topic: i.topic, status: 200 }) as InvokeResult);
      },
    },
    () => undefined,
    { result: () => undefined, error: () => undefined },
  );
  const add = (topic: string, window = 100) =>
    void b.add(fn, { topic, body: new Uint8Array(1) }, policy(window));
  return { b, sent, add };
}

describe('Batcher window', () => {
  it('counts the window from the first item of each batch, also after a batch that filled up', () => {
    vi.useFakeTimers({ now: 0 });
    const { b, sent, add } = recording();
    add('a');
    add('b'); // full: sent at once
    vi.advanceTimersByTime(70);
    add('c'); // its window ends at 170, not at 100 (where the first batch's would have)
    vi.advanceTimersByTime(99);
    expect(sent).toEqual([{ at: 0, topics: ['a', 'b'] }]);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual([
      { at: 0, topics: ['a', 'b'] },
      { at: 170, topics: ['c'] },
    ]);
    vi.advanceTimersByTime(30);
    add('d', 50); // the window changed (a rebuild): the new one applies
    vi.advanceTimersByTime(50);
    expect(sent.at(-1)).toEqual({ at: 250, topics: ['d'] });
    add('e');
    b.drain(); // sends what waits at once, and leaves no timer behind
    expect(sent.at(-1)).toEqual({ at: 250, topics: ['e'] });
    expect(vi.getTimerCount()).toBe(0);
  });
});
