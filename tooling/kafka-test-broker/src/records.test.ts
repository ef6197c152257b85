import { gzipSync } from 'node:zlib';
import snappy from 'snappyjs';
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

/** A RecordBatch v2 of `records`, compressed with `codec` (gzip here; other codecs' bytes given as `payload`). */
function batch(baseOffset: number, records: Rec[], codec = 0, payload?: Buffer): Buffer {
  const raw = encodeRecords(records);
  payload ??= codec === 1 ? gzipSync(raw) : raw;
  const afterCrc = new Writer()
    .int16(codec)
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
      batch(12, [{ key: 'z', value: 'gz'.repeat(100), timestampDelta: 5 }], 1),
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

  it('rejects truncated input and unknown codecs with RecordBatchError', () => {
    const good = batch(0, [{ key: 'a', value: 'b' }]);
    expect(() => decodeRecordBatch(good.subarray(0, good.length - 1))).toThrow(RecordBatchError);
    const unknown = Buffer.from(good);
    unknown.writeInt16BE(5, 21);
    expect(() => decodeRecordBatch(unknown)).toThrow(/codec 5/);
    expect(readBatchHeader(unknown, 0)!.crcValid).toBe(false);
  });

  it('decodes snappy (raw and xerial-framed), lz4 and zstd batches, as Kafka clients write them', () => {
    const records: Rec[] = [
      { key: 'z', value: 'zstd'.repeat(100) },
      { key: null, value: 'second' },
    ];
    const raw = encodeRecords(records);
    // snappy-java's framing: magic, version 1, compatible 1, then [int32 length][block] per block.
    const half = raw.length >> 1;
    const xerial = Buffer.concat([
      Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]),
      ...[raw.subarray(0, half), raw.subarray(half)].flatMap((part) => {
        const block = Buffer.from(snappy.compress(part));
        const length = Buffer.alloc(4);
        length.writeInt32BE(block.length);
        return [length, block];
      }),
    ]);
    // Made with the lz4 and zstd command-line tools from these records (zstd twice: with its content size, and
    // streamed from stdin, without it, as Java's zstd-jni writes frames).
    const lz4 = Buffer.from(
      'BCJNGGRApyEAAADfsAYAAAACeqAGenN0ZAQA/3rgABgAAAIBDHNlY29uZAAAAAAA2Q/Nfw==',
      'base64',
    );
    const zstd = Buffer.from('KLUv/WCnABUBANiwBgAAAAJ6oAZ6c3RkABgAAAIBDHNlY29uZAABAImr7gs=', 'base64');
    const zstdStreamed = Buffer.from(
      'KLUv/QRYFQEA2LAGAAAAAnqgBnpzdGQAGAAAAgEMc2Vjb25kAAEAiavuC7sp/m8=',
      'base64',
    );
    const payloads: [number, Buffer][] = [
      [2, Buffer.from(snappy.compress(raw))],
      [2, xerial],
      [3, lz4],
      [4, zstd],
      [4, zstdStreamed],
    ];
    for (const [codec, payload] of payloads) {
      const decoded = decodeRecordBatch(batch(7, records, codec, payload));
      expect(decoded.map((r) => [r.offset, r.key && String(r.key), String(r.value)])).toEqual([
        [7, 'z', 'zstd'.repeat(100)],
        [8, null, 'second'],
      ]);
    }
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
