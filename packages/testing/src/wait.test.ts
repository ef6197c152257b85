import { describe, expect, it } from 'vitest';
import { WaitForTimeoutError, waitFor } from './wait.js';

describe('waitFor', () => {
  it('returns the first truthy value of the predicate, sync or async', async () => {
    let n = 0;
    expect(await waitFor(() => (++n >= 3 ? `after ${n}` : undefined), { interval: 1 })).toBe('after 3');
    expect(await waitFor(async () => ({ ok: true }))).toEqual({ ok: true });
  });

  it('fails after the timeout naming what it waited for and the last value', async () => {
    const err = await waitFor(() => 0, { timeout: 30, interval: 5, message: 'the queue to drain' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WaitForTimeoutError);
    expect((err as WaitForTimeoutError).code).toBe('ERR_TIMEOUT');
    expect((err as Error).message).toBe(
      'waitFor timed out after 30 ms waiting for the queue to drain; last value: 0',
    );
  });

  it('treats a throwing predicate as not yet, and reports its last error as the cause', async () => {
    let calls = 0;
    const value = await waitFor(
      () => {
        if (++calls < 3) throw new Error('not yet');
        return calls;
      },
      { interval: 1 },
    );
    expect(value).toBe(3);
    const boom = new Error('expected 1 to be 2');
    const err = (await waitFor(
      () => {
        throw boom;
      },
      { timeout: 20, interval: 5, message: () => `state ${calls}` },
    ).catch((e: unknown) => e)) as Error;
    expect(err.message).toBe(
      'waitFor timed out after 20 ms waiting for state 3; last error: expected 1 to be 2',
    );
    expect(err.cause).toBe(boom);
  });
});
