import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { Reader, Writer } from './protocol.js';
import { crc32c, decodeRecordBatch, RecordBatchError, readBatchHeader } from './records.js';

function zigzag(n: number): number[] {
  let v = n >= 0 ? n * 2 : -n * 2 - 1;
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function varBytes(b: Buffer | null): Buffer {
  return b === null ? Buffer.from(zigzag(-1)) : Buffer.concat([Buffer.from(zigzag(b.length)), b]);
}

interface Rec {
  key: string | null;
  value: string | null;
  headers?: [string, string | null][];
  timestampDelta?: number;
}

function encodeRecords(records: Rec[]): Buffer {
  return Buffer.concat(
    records.map((r, i) => {
      const body = Buffer.concat([
        Buffer.from([0]),
        Buffer.from(zigzag(r.timestampDelta ?? 0)),
        Buffer.from(zigzag(i)),
        varBytes(r.key === null ? null : Buffer.from(r.key)),
        varBytes(r.value === null ? null : Buffer.from(r.value)),
        Buffer.from(zigzag(r.headers?.length ?? 0)),
        ...(r.headers ?? []).map(([k, v]) =>
          Buffer.concat([varBytes(Buffer.from(k)), varBytes(v === null ? null : Buffer.from(v))]),
        ),
      ]);
      return Buffer.concat([Buffer.from(zigzag(body.length)), body]);
    }),
  );
}

function batch(baseOffset: number, records: Rec[], gzip = false): Buffer {
  const raw = encodeRecords(records);
  const payload = gzip ? gzipSync(raw) : raw;
  const afterCrc = new Writer()
    .int16(gzip ? 1 : 0)
    .int32(records.length - 1)
    .int64(1_000)
    .int64(1_000 + Math.max(0, ...records.map((r) => r.timestampDelta ?? 0)))
    .int64(-1)
    .int16(-1)
    .int32(-1)
    .int32(records.length)
    .raw(payload)
    .toBuffer();
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32c(afterCrc));
  return Buffer.concat([
    new Writer()
      .int64(baseOffset)
      .int32(9 + afterCrc.length)
      .int32(0)
      .int8(2)
      .toBuffer(),
    crc,
    afterCrc,
  ]);
}

describe('crc32c', () => {
  it('matches the standard check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
  });
});

describe('decodeRecordBatch', () => {
  it('decodes keys, null values, repeated headers and timestamps across concatenated batches', () => {
    const buf = Buffer.concat([
      batch(10, [
        {
          key: 'k',
          value: 'v',
          headers: [
            ['h', '1'],
            ['h', '2'],
            ['n', null],
          ],
        },
        { key: null, value: null, timestampDelta: 250 },
      ]),
      batch(12, [{ key: 'z', value: 'gz'.repeat(100), timestampDelta: 5 }], true),
    ]);
    const header = readBatchHeader(buf, 0)!;
    expect(header).toMatchObject({
      baseOffset: 10,
      magic: 2,
      lastOffsetDelta: 1,
      recordCount: 2,
      crcValid: true,
    });

    const records = decodeRecordBatch(buf);
    expect(records).toHaveLength(3);
    expect(records[0]).toMatchObject({ offset: 10, timestamp: 1000 });
    expect(String(records[0]!.key)).toBe('k');
    expect(records[0]!.headers.map((h) => [h.key, h.value === null ? null : String(h.value)])).toEqual([
      ['h', '1'],
      ['h', '2'],
      ['n', null],
    ]);
    expect(records[1]).toMatchObject({ offset: 11, key: null, value: null, timestamp: 1250, headers: [] });
    expect(records[2]).toMatchObject({ offset: 12, timestamp: 1005 });
    expect(String(records[2]!.value)).toBe('gz'.repeat(100));
  });

  it('rejects truncated input and unsupported codecs with RecordBatchError', () => {
    const good = batch(0, [{ key: 'a', value: 'b' }]);
    expect(() => decodeRecordBatch(good.subarray(0, good.length - 1))).toThrow(RecordBatchError);
    const snappy = Buffer.from(good);
    snappy.writeInt16BE(2, 21);
    expect(() => decodeRecordBatch(snappy)).toThrow(/codec 2/);
    expect(readBatchHeader(snappy, 0)!.crcValid).toBe(false);
  });
});

describe('Reader and Writer', () => {
  it('round-trip the Kafka primitive types, nulls included', () => {
    const w = new Writer(1)
      .int8(-1)
      .bool(true)
      .int16(-2)
      .int32(123456)
      .int64(2 ** 40 + 7)
      .string('héllo')
      .string(null)
      .bytes(Buffer.from([1, 2]))
      .bytes(null)
      .array([1, 2, 3], (w, n) => w.int32(n))
      .array(null, () => {});
    const r = new Reader(w.toBuffer());
    expect([r.int8(), r.bool(), r.int16(), r.int32(), r.int64()]).toEqual([
      -1,
      true,
      -2,
      123456,
      2 ** 40 + 7,
    ]);
    expect([r.nullableString(), r.nullableString()]).toEqual(['héllo', null]);
    expect([r.bytes(), r.bytes()]).toEqual([Buffer.from([1, 2]), null]);
    expect(r.array((r) => r.int32())).toEqual([1, 2, 3]);
    expect(r.array((r) => r.int32())).toBeNull();
    expect(r.remaining()).toBe(0);
    expect(() => r.int8()).toThrow(/truncated/);
  });
});
