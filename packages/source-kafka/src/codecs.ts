// kafkajs decodes GZIP batches only: a Snappy, LZ4 or ZSTD batch (what most producers on real clusters write:
// Java's and librdkafka's compression.type, Sarama's Compression) fails the whole fetch with "... compression not
// implemented", and every partition of that broker stalls. This file gives kafkajs those three codecs, in pure
// JavaScript (no native build, any platform): decompression for all three, compression for Snappy and LZ4.
import { createRequire } from 'node:module';
import { decompress as zstdDecompress } from 'fzstd';
import kafkajs from 'kafkajs';
import snappy from 'snappyjs';

// kafkajs is CommonJS and exports these as `key: value` properties, which Node's ESM named imports cannot see.
const { CompressionCodecs, CompressionTypes } = kafkajs;

/** lz4js (LZ4 frames, as Kafka writes them; it ships no types): the two functions used here. */
const lz4 = createRequire(import.meta.url)('lz4js') as {
  compress(src: Uint8Array): Uint8Array;
  decompress(src: Uint8Array): Uint8Array;
};

/** A kafkajs codec: what `CompressionCodecs[type]()` returns. */
interface Codec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** The header of xerial snappy-java's stream format: magic (8 bytes), version and compatible version (int32s). */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER = 16;

/**
 * Snappy as Kafka clients write it: the Java client (snappy-java) frames blocks in xerial's stream format (the
 * header, then `[int32 length][raw snappy block]` repeated); Sarama, librdkafka and kafkajs-snappy write one raw
 * snappy block. Both are read; compression writes a raw block, which every Kafka client reads.
 */
export function snappyDecompress(buffer: Buffer): Buffer {
  if (buffer.length < XERIAL_HEADER || !buffer.subarray(0, 8).equals(XERIAL_MAGIC))
    return asBuffer(snappy.uncompress(buffer));
  const blocks: Buffer[] = [];
  let at = XERIAL_HEADER;
  while (at < buffer.length) {
    if (at + 4 > buffer.length) throw new Error(`truncated xerial snappy block length at byte ${at}`);
    const length = buffer.readInt32BE(at);
    at += 4;
    if (length < 0 || at + length > buffer.length)
      throw new Error(`xerial snappy block of ${length} bytes at byte ${at} runs past the batch`);
    blocks.push(asBuffer(snappy.uncompress(buffer.subarray(at, at + length))));
    at += length;
  }
  return blocks.length === 1 ? (blocks[0] as Buffer) : Buffer.concat(blocks);
}

/** `decompress`, failing with a message that says which codec could not read the batch. */
const reading =
  (name: string, decompress: (b: Buffer) => Buffer) =>
  async (buffer: Buffer): Promise<Buffer> => {
    try {
      return decompress(buffer);
    } catch (err) {
      throw new Error(`a ${name} batch could not be decompressed: ${(err as Error).message}`);
    }
  };

const CODECS: Record<number, Codec> = {
  [CompressionTypes.Snappy]: {
    compress: async (encoder) => asBuffer(snappy.compress(encoder.buffer)),
    decompress: reading('Snappy', snappyDecompress),
  },
  // Kafka's LZ4 (record batch v2) is the standard LZ4 frame format.
  [CompressionTypes.LZ4]: {
    compress: async (encoder) => asBuffer(lz4.compress(encoder.buffer)),
    decompress: reading('LZ4', (b) => asBuffer(lz4.decompress(b))),
  },
  [CompressionTypes.ZSTD]: {
    compress: async () => {
      throw new Error(
        'ZSTD compression is not available: @connector/source-kafka only decompresses ZSTD (produce with GZIP, ' +
          'Snappy or LZ4, or register a ZSTD codec in kafkajs CompressionCodecs)',
      );
    },
    decompress: reading('ZSTD', (b) => asBuffer(zstdDecompress(b))),
  },
};

/** True when kafkajs has no codec of `type` (its own placeholder throws "... not implemented"). */
function missing(type: number): boolean {
  const lookup = (CompressionCodecs as Record<number, (() => unknown) | undefined>)[type];
  if (lookup === undefined) return true;
  try {
    lookup();
    return false;
  } catch (err) {
    return (err as { name?: string }).name === 'KafkaJSNotImplemented';
  }
}

/**
 * Give kafkajs the Snappy, LZ4 and ZSTD codecs it lacks (idempotent). A codec the application registered itself
 * (a native Snappy, say) is kept: only kafkajs's "not implemented" placeholders are replaced.
 */
export function installCodecs(): void {
  for (const [type, codec] of Object.entries(CODECS)) {
    if (missing(Number(type))) (CompressionCodecs as Record<number, () => Codec>)[Number(type)] = () => codec;
  }
}
