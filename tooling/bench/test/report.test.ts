import { describe, expect, it } from 'vitest';
import { e2eCpuText, row } from '../src/report.js';
import type { Repetition } from '../src/stats.js';

const rep = (over: Partial<Repetition>): Repetition => ({
  ops: 10_000,
  seconds: 1,
  opsPerSec: 10_000,
  p50Ms: 0.1,
  p99Ms: 1,
  cpuPer10k: 0.2,
  ...over,
});

describe('e2eCpuText: the machine bound of an end-to-end row', () => {
  // ceiling: 40k/s at 0.2 s (connector) + 0.25 s (gateway) of CPU per 10k; the source row adds a broker (0.3) and a
  // publisher (0.05): 0.8 s per 10k on 2 CPUs is 25k/s at most, 0.625 of the ceiling; 15k/s reached 0.6 of that.
  const ceiling = row(
    {
      id: 'invoke-x16',
      case: 'invoke x16',
      concurrency: 16,
      maxRssMb: 1,
      repetitions: [rep({ opsPerSec: 40_000, gatewayCpuPer10k: 0.25 })],
    },
    undefined,
  );
  const e2e = (over: Partial<Repetition>) =>
    row(
      {
        id: 'e2e-mqtt-16',
        case: 'MQTT 16',
        concurrency: 16,
        ceiling: 'invoke-x16',
        maxRssMb: 1,
        repetitions: [
          rep({
            opsPerSec: 15_000,
            cpuPer10k: 0.3,
            othersCpuPer10k: { broker: 0.3, publisher: 0.05 },
            gatewayCpuPer10k: 0.2,
            ...over,
          }),
        ],
      },
      ceiling.repetitions,
    );

  it('names every process CPU a message and the bound, with how much of it was reached', () => {
    const text = e2eCpuText([ceiling, e2e({})], 'e2e-mqtt-16', 2);
    expect(text).toContain(
      "connector 0.300 (1.50× the ceiling's), gateway 0.200, broker 0.300, publisher 0.050",
    );
    expect(text).toContain('machine bound 0.63× (2 CPUs');
    expect(text).toContain('reached 0.60 of it');
    expect(text).not.toContain('out of reach');
  });

  it('says when the target is above the bound, and only then', () => {
    expect(e2eCpuText([ceiling, e2e({})], 'e2e-mqtt-16', 2, 0.8)).toContain(
      '; the target (0.8×) is above this bound: out of reach on this machine whatever the source does',
    );
    expect(e2eCpuText([ceiling, e2e({})], 'e2e-mqtt-16', 2, 0.6)).not.toContain('out of reach');
  });

  it('caps the bound at the ceiling itself', () => {
    const text = e2eCpuText([ceiling, e2e({ othersCpuPer10k: { publisher: 0 } })], 'e2e-mqtt-16', 4);
    expect(text).toContain('machine bound 1.00×');
    expect(text).toContain('reached 0.38 of it');
  });

  it('gives no bound without a CPU count, and nothing for a row that did not run', () => {
    expect(e2eCpuText([ceiling, e2e({})], 'e2e-mqtt-16')).not.toContain('machine bound');
    expect(e2eCpuText([ceiling], 'e2e-mqtt-16')).toBe('');
  });
});
