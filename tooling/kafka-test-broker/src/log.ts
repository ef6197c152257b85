import { decodeRecordBatch } from './records.js';

/** A stored batch: the producer's bytes with the base offset rewritten. */
export interface StoredBatch {
  /** First offset of the batch. */
  baseOffset: number;
  /** Last offset of the batch (inclusive). */
  lastOffset: number;
  /** Largest record timestamp. */
  maxTimestamp: number;
  /** Whole batch, wire format. */
  bytes: Buffer;
}

/** One partition's in-memory log. */
export class PartitionLog {
  /** Batches in offset order. */
  readonly batches: StoredBatch[] = [];
  /** Next offset to assign (= high watermark = last stable offset; no transactions). */
  nextOffset = 0;
  /** First offset still in the log (always 0: nothing is deleted). */
  readonly logStartOffset = 0;

  /** Appends a validated batch; rewrites its base offset in place and returns it. */
  append(batch: Buffer, lastOffsetDelta: number, maxTimestamp: number): number {
    const base = this.nextOffset;
    batch.writeBigInt64BE(BigInt(base), 0);
    this.batches.push({ baseOffset: base, lastOffset: base + lastOffsetDelta, maxTimestamp, bytes: batch });
    this.nextOffset = base + lastOffsetDelta + 1;
    return base;
  }

  /** Index of the batch that contains `offset`, or of the first batch after it; -1 if none. */
  indexFor(offset: number): number {
    let lo = 0;
    let hi = this.batches.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const b = this.batches[mid]!;
      if (b.lastOffset >= offset) {
        found = mid;
        hi = mid - 1;
      } else {
        lo = mid + 1;
      }
    }
    return found;
  }

  /** Whole batches starting at the one holding `offset`, up to `maxBytes`; `atLeastOne` lets the first exceed it. */
  read(offset: number, maxBytes: number, atLeastOne: boolean): Buffer[] {
    const start = this.indexFor(offset);
    if (start < 0) return [];
    const out: Buffer[] = [];
    let size = 0;
    for (let i = start; i < this.batches.length; i++) {
      const b = this.batches[i]!.bytes;
      if (size + b.length > maxBytes && !(atLeastOne && out.length === 0)) break;
      out.push(b);
      size += b.length;
    }
    return out;
  }

  /** First offset whose record timestamp is >= `timestamp`, with that timestamp; null if none. */
  offsetForTimestamp(timestamp: number): { offset: number; timestamp: number } | null {
    for (const b of this.batches) {
      if (b.maxTimestamp < timestamp) continue;
      for (const r of decodeRecordBatch(b.bytes)) {
        if (r.timestamp >= timestamp) return { offset: r.offset, timestamp: r.timestamp };
      }
    }
    return null;
  }
}

/** A topic: a fixed list of partitions. */
export class TopicLog {
  /** Partitions by index. */
  readonly partitions: PartitionLog[];
  constructor(
    readonly name: string,
    partitionCount: number,
  ) {
    this.partitions = Array.from({ length: partitionCount }, () => new PartitionLog());
  }
}

/** Legal topic names, as Kafka checks them. */
export function topicNameProblem(name: string): string | null {
  if (name.length === 0) return 'topic name is empty';
  if (name === '.' || name === '..') return 'topic name cannot be "." or ".."';
  if (name.length > 249) return 'topic name is longer than 249 characters';
  if (!/^[a-zA-Z0-9._-]+$/.test(name)) return 'topic name may only contain [a-zA-Z0-9._-]';
  return null;
}
