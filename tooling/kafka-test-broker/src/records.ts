import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';
import { decompress as unzstd } from 'fzstd';
import snappy from 'snappyjs';
import { ProtocolError, Reader } from './protocol.js';

/** Size of a RecordBatch v2 header up to and including the record count. */
export const BATCH_HEADER_SIZE = 61;
const CRC_START = 21;
const CODEC_MASK = 0x07;
/** Compression codecs, as Kafka accepts them: none (0), gzip (1), snappy (2), lz4 (3), zstd (4). */
export const SUPPORTED_CODECS: ReadonlySet<number> = new Set([0, 1, 2, 3, 4]);

/** lz4js ships no types. */
const lz4 = createRequire(import.meta.url)('lz4js') as { decompress(src: Uint8Array): Uint8Array };

/** snappy-java's stream header (xerial): magic, then two int32 versions; blocks follow as [int32 length][block]. */
const XERIAL = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);

function unsnappy(body: Buffer): Buffer {
  if (!(body.length >= 16 && body.subarray(0, 8).equals(XERIAL))) return Buffer.from(snappy.uncompress(body));
  const parts: Buffer[] = [];
  for (let at = 16; at < body.length; ) {
    const n = body.readInt32BE(at);
    parts.push(Buffer.from(snappy.uncompress(body.subarray(at + 4, at + 4 + n))));
    at += 4 + n;
  }
  return Buffer.concat(parts);
}

/** The records section of a batch compressed with `codec`, decompressed. */
function decompress(codec: number, body: Buffer): Buffer {
  switch (codec) {
    case 0:
      return body;
    case 1:
      return gunzipSync(body);
    case 2:
      return unsnappy(body);
    case 3:
      return Buffer.from(lz4.decompress(body));
    case 4:
      return Buffer.from(unzstd(body));
    default:
      throw new RecordBatchError(`unsupported compression codec ${codec}`);
  }
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

/** CRC-32C (Castagnoli), as RecordBatch v2 uses it. */
export function crc32c(buf: Buffer): number {
  let crc = 0xffffffff;
  for (let i = 0; i < buf.length; i++) crc = CRC32C_TABLE[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The header fields of one RecordBatch v2 that the broker needs. */
export interface BatchHeader {
  /** Base offset as written in the batch. */
  baseOffset: number;
  /** Total size of the batch in bytes (header included). */
  size: number;
  /** Magic byte (2 for RecordBatch). */
  magic: number;
  /** Attributes (compression in the low 3 bits). */
  attributes: number;
  /** Offset of the last record relative to baseOffset. */
  lastOffsetDelta: number;
  /** Timestamp of the first record. */
  firstTimestamp: number;
  /** Largest timestamp in the batch. */
  maxTimestamp: number;
  /** Number of records. */
  recordCount: number;
  /** True when the stored CRC-32C matches the batch contents. */
  crcValid: boolean;
}

/** Reads the header of the batch that starts at `pos`; null when fewer bytes than a whole batch remain. */
export function readBatchHeader(buf: Buffer, pos: number): BatchHeader | null {
  if (buf.length - pos < BATCH_HEADER_SIZE) return null;
  const batchLength = buf.readInt32BE(pos + 8);
  const size = 12 + batchLength;
  if (batchLength < BATCH_HEADER_SIZE - 12 || pos + size > buf.length) return null;
  const magic = buf.readInt8(pos + 16);
  const storedCrc = buf.readUInt32BE(pos + 17);
  return {
    baseOffset: Number(buf.readBigInt64BE(pos)),
    size,
    magic,
    attributes: buf.readInt16BE(pos + 21),
    lastOffsetDelta: buf.readInt32BE(pos + 23),
    firstTimestamp: Number(buf.readBigInt64BE(pos + 27)),
    maxTimestamp: Number(buf.readBigInt64BE(pos + 35)),
    recordCount: buf.readInt32BE(pos + 57),
    crcValid: magic === 2 && crc32c(buf.subarray(pos + CRC_START, pos + size)) === storedCrc,
  };
}

/** One header of a record. */
export interface RecordHeader {
  /** Header key. */
  key: string;
  /** Header value (null is legal on the wire). */
  value: Buffer | null;
}

/** One record decoded from a RecordBatch v2. */
export interface DecodedRecord {
  /** Absolute offset (batch base offset + delta). */
  offset: number;
  /** Record key, null when absent. */
  key: Buffer | null;
  /** Record value, null for a tombstone. */
  value: Buffer | null;
  /** Headers in wire order (keys may repeat). */
  headers: RecordHeader[];
  /** Timestamp in ms (create time). */
  timestamp: number;
}

/** Thrown by {@link decodeRecordBatch} for input that is not a whole, supported RecordBatch v2. */
export class RecordBatchError extends Error {
  /** Stable machine-readable code. */
  readonly code = 'ERR_RECORD_BATCH';
}

/**
 * Decodes every RecordBatch v2 in `buf` (one or more concatenated batches) into records.
 * Supports every Kafka codec (none, gzip, snappy, lz4, zstd); skips control batches.
 */
export function decodeRecordBatch(buf: Buffer): DecodedRecord[] {
  const out: DecodedRecord[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const h = readBatchHeader(buf, pos);
    if (h === null) throw new RecordBatchError(`incomplete record batch at byte ${pos}`);
    if (h.magic !== 2) throw new RecordBatchError(`unsupported magic byte ${h.magic} at byte ${pos}`);
    const codec = h.attributes & CODEC_MASK;
    const isControl = (h.attributes & 0x20) !== 0;
    if (!isControl) {
      const body = decompress(codec, buf.subarray(pos + BATCH_HEADER_SIZE, pos + h.size));
      const r = new Reader(body);
      try {
        for (let i = 0; i < h.recordCount; i++) {
          const length = r.varint();
          const end = r.pos + length;
          r.int8(); // attributes, unused
          const timestampDelta = r.varint();
          const offsetDelta = r.varint();
          const key = r.varBytes();
          const value = r.varBytes();
          const headerCount = r.varint();
          const headers: RecordHeader[] = [];
          for (let j = 0; j < headerCount; j++) {
            const hk = r.varString() ?? '';
            headers.push({ key: hk, value: copy(r.varBytes()) });
          }
          r.pos = end;
          out.push({
            offset: h.baseOffset + offsetDelta,
            key: copy(key),
            value: copy(value),
            headers,
            timestamp: h.firstTimestamp + timestampDelta,
          });
        }
      } catch (err) {
        if (err instanceof ProtocolError) throw new RecordBatchError(`malformed record: ${err.message}`);
        throw err;
      }
    }
    pos += h.size;
  }
  return out;
}

function copy(b: Buffer | null): Buffer | null {
  return b === null ? null : Buffer.from(b);
}
