import { CompressionCodecs, CompressionTypes } from 'kafkajs';
import snappy from 'snappyjs';
import { afterEach, describe, expect, it } from 'vitest';
import { installCodecs, snappyDecompress } from './codecs.js';

type Lookup = () => {
  compress(e: { buffer: Buffer }): Promise<Buffer>;
  decompress(b: Buffer): Promise<Buffer>;
};
const codecs = CompressionCodecs as unknown as Record<number, Lookup>;
const kafkajsOwn = { ...codecs };
afterEach(() => Object.assign(codecs, kafkajsOwn));

const TEXT = 'hello kafka, '.repeat(50);
// Made from TEXT with the lz4 and zstd command-line tools (zstd twice: with its content size, and streamed from
// stdin without it, as Java's zstd-jni writes a Kafka batch).
const LZ4_CLI = 'BCJNGGRApxkAAADfaGVsbG8ga2Fma2EsIA0A//9nUGZrYSwgAAAAAB460kE=';
const ZSTD_CLI = 'KLUv/WSKAaUAAGhoZWxsbyBrYWZrYSwgAQB6oJpfVZY5OQ==';
const ZSTD_CLI_STREAMED = 'KLUv/QRYpQAAaGhlbGxvIGthZmthLCABAHqgml9Vljk5';

/** snappy-java's stream format (xerial): its header, then each part as [int32 length][raw snappy block]. */
function xerial(parts: string[]): Buffer {
  const header = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]);
  return Buffer.concat([
    header,
    ...parts.flatMap((p) => {
      const block = Buffer.from(snappy.compress(Buffer.from(p)));
      const length = Buffer.alloc(4);
      length.writeInt32BE(block.length);
      return [length, block];
    }),
  ]);
}

const decompress = async (type: number, b: Buffer) => String(await codecs[type]!().decompress(b));

describe('installCodecs', () => {
  it('replaces only kafkajs\'s "not implemented" placeholders, and leaves GZIP as it is', () => {
    expect(() => codecs[CompressionTypes.Snappy]!()).toThrow(/not implemented/);
    const gzip = codecs[CompressionTypes.GZIP];
    installCodecs();
    installCodecs(); // idempotent
    for (const t of [CompressionTypes.Snappy, CompressionTypes.LZ4, CompressionTypes.ZSTD])
      expect(codecs[t]!()).toHaveProperty('decompress');
    expect(codecs[CompressionTypes.GZIP]).toBe(gzip);
  });

  it('keeps a codec the application registered itself (a native Snappy, say)', () => {
    const own: Lookup = () => ({
      compress: async () => Buffer.alloc(0),
      decompress: async () => Buffer.alloc(0),
    });
    codecs[CompressionTypes.Snappy] = own;
    installCodecs();
    expect(codecs[CompressionTypes.Snappy]).toBe(own);
    expect(codecs[CompressionTypes.LZ4]).not.toBe(kafkajsOwn[CompressionTypes.LZ4]);
  });
});

describe('the codecs', () => {
  it('Snappy: one raw block (Sarama, librdkafka, kafkajs-snappy) and xerial-framed blocks (the Java client)', async () => {
    installCodecs();
    expect(await decompress(CompressionTypes.Snappy, Buffer.from(snappy.compress(Buffer.from(TEXT))))).toBe(
      TEXT,
    );
    expect(await decompress(CompressionTypes.Snappy, xerial([TEXT.slice(0, 100), TEXT.slice(100)]))).toBe(
      TEXT,
    );
    expect(await decompress(CompressionTypes.Snappy, xerial([TEXT]))).toBe(TEXT);
  });

  it('LZ4 and ZSTD: frames made by the reference command-line tools', async () => {
    installCodecs();
    expect(await decompress(CompressionTypes.LZ4, Buffer.from(LZ4_CLI, 'base64'))).toBe(TEXT);
    expect(await decompress(CompressionTypes.ZSTD, Buffer.from(ZSTD_CLI, 'base64'))).toBe(TEXT);
    expect(await decompress(CompressionTypes.ZSTD, Buffer.from(ZSTD_CLI_STREAMED, 'base64'))).toBe(TEXT);
  });

  it('Snappy and LZ4 compress what they decompress; ZSTD compression says it is not available', async () => {
    installCodecs();
    for (const t of [CompressionTypes.Snappy, CompressionTypes.LZ4]) {
      const packed = await codecs[t]!().compress({ buffer: Buffer.from(TEXT) });
      expect(packed.length).toBeLessThan(TEXT.length / 4);
      expect(await decompress(t, packed)).toBe(TEXT);
    }
    await expect(codecs[CompressionTypes.ZSTD]!().compress({ buffer: Buffer.from(TEXT) })).rejects.toThrow(
      /ZSTD compression is not available: @connector\/source-kafka only decompresses ZSTD/,
    );
  });

  it('a batch a codec cannot read fails naming the codec', async () => {
    installCodecs();
    const garbage = Buffer.from('not compressed at all');
    for (const [t, name] of [
      [CompressionTypes.Snappy, 'Snappy'],
      [CompressionTypes.LZ4, 'LZ4'],
      [CompressionTypes.ZSTD, 'ZSTD'],
    ] as const)
      await expect(codecs[t]!().decompress(garbage)).rejects.toThrow(
        new RegExp(`^a ${name} batch could not be decompressed: .+`),
      );
  });

  it('a truncated xerial frame fails naming the byte, not with an out-of-range read', () => {
    const framed = xerial([TEXT]);
    expect(() => snappyDecompress(framed.subarray(0, framed.length - 3))).toThrow(
      /xerial snappy block of \d+ bytes at byte 20 runs past the batch/,
    );
    expect(() => snappyDecompress(framed.subarray(0, 18))).toThrow(
      /truncated xerial snappy block length at byte 16/,
    );
  });
});
