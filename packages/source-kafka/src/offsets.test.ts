import { describe, expect, it } from 'vitest';
import { PartitionOffsets } from './offsets.js';

describe('PartitionOffsets: the commit point of a partition', () => {
  it('never passes a record still open, whatever settled after it', () => {
    const o = new PartitionOffsets();
    for (const off of ['10', '11', '12', '13']) o.start(off);
    o.settle('12', true);
    o.settle('13', true);
    expect(o.committable()).toBeUndefined();
    o.settle('10', true);
    expect(o.committable()).toBe('10');
    expect(o.open()).toBe(1);
    o.settle('11', true);
    expect(o.committable()).toBe('13');
    expect(o.open()).toBe(0);
  });

  it('stops before a failed record for good, and names it as where to consume again', () => {
    const o = new PartitionOffsets();
    for (const off of ['0', '1', '2', '3']) o.start(off);
    o.settle('0', true);
    o.settle('1', false);
    o.settle('2', true);
    o.settle('3', true);
    expect(o.committable()).toBe('0');
    expect(o.firstFailed()).toBe('1');
    o.settle('1', true); // settled once: a late second answer changes nothing
    expect(o.committable()).toBe('0');
  });

  it('works across gaps in the offsets (compacted topics): only started records count', () => {
    const o = new PartitionOffsets();
    o.start('5');
    o.start('9');
    o.settle('9', true);
    o.settle('5', true);
    expect(o.committable()).toBe('9');
    expect(o.firstFailed()).toBeUndefined();
  });

  it('names the failed record as where to consume again even while an earlier one is still open', () => {
    const o = new PartitionOffsets();
    for (const off of ['0', '1', '2']) o.start(off);
    o.settle('2', false);
    o.settle('1', false);
    expect(o.firstFailed()).toBe('1');
    expect(o.committable()).toBeUndefined();
    expect(o.open()).toBe(1);
  });

  it('ignores a settle of a record never started', () => {
    const o = new PartitionOffsets();
    o.start('0');
    o.settle('7', true);
    o.settle('7', false);
    expect(o.committable()).toBeUndefined();
    expect(o.firstFailed()).toBeUndefined();
    expect(o.open()).toBe(1);
    o.settle('0', true);
    expect(o.committable()).toBe('0');
  });
});
