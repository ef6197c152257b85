import { startGateway, type TestGateway } from '@connector/testing';
import { CompressionCodecs, CompressionTypes } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { installCodecs } from '../src/index.js';
import { kafkaSuite, waitFor } from './helpers.js';

const { k, cleanup, consume } = kafkaSuite();

type Codec = { compress(e: { buffer: Buffer }): Promise<Buffer>; decompress(b: Buffer): Promise<Buffer> };

/**
 * A ZSTD frame of raw (stored) blocks (RFC 8878 3.1.1): what the test producer writes, since the source only
 * decompresses ZSTD (frames the reference tool compressed are decoded in src/codecs.test.ts).
 */
function zstdStored(data: Buffer): Buffer {
  const header = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0, 0, 0, 0]); // magic; single segment, 4-byte size
  header.writeUInt32LE(data.length, 5);
  const parts: Buffer[] = [header];
  for (let at = 0; at === 0 || at < data.length; at += 128 * 1024) {
    const block = data.subarray(at, at + 128 * 1024);
    const last = at + 128 * 1024 >= data.length ? 1 : 0;
    const head = (block.length << 3) | last; // block type 0: raw
    parts.push(Buffer.from([head & 0xff, (head >> 8) & 0xff, (head >> 16) & 0xff]), block);
  }
  return Buffer.concat(parts);
}

describe('compressed batches, as producers on real clusters write them', () => {
  it('delivers records of GZIP, Snappy, LZ4 and ZSTD batches, in order, and commits them', async () => {
    const topic = 'compressed';
    const g: TestGateway = await startGateway({ functions: [{ name: 'fn', annotations: { topic } }] });
    cleanup.add(() => g.close());
    // The test producer compresses with the source's Snappy and LZ4 and writes ZSTD frames of its own; then
    // kafkajs's registry goes back to its "not implemented" placeholders: the source must install its codecs.
    const codecs = CompressionCodecs as unknown as Record<number, () => Codec>;
    const kafkajsOwn = { ...codecs };
    installCodecs();
    const zstd = codecs[CompressionTypes.ZSTD] as () => Codec;
    codecs[CompressionTypes.ZSTD] = () => ({ ...zstd(), compress: async (e) => zstdStored(e.buffer) });
    const types = { GZIP: 1, Snappy: 2, LZ4: 3, ZSTD: 4 } as const;
    const sent: string[] = [];
    for (const [name, compression] of Object.entries(types)) {
      const values = Array.from({ length: 20 }, (_, i) => `${name}-${i}-${'x'.repeat(200)}`);
      sent.push(...values);
      await k.send({ topic, compression, messages: values.map((value) => ({ partition: 0, value })) });
    }
    // Stored compressed, as sent.
    expect([...new Set(k.broker.produced(topic).map((r) => r.codec))]).toEqual([1, 2, 3, 4]);

    Object.assign(codecs, kafkajsOwn);
    expect(() => codecs[CompressionTypes.Snappy]?.()).toThrow(/not implemented/);

    await consume(g, { topics: [topic], group: 'g-compressed' });
    await waitFor(() => g.invocations('fn').length >= sent.length, `${sent.length} deliveries`);
    expect(g.invocations('fn').map((r) => r.body.toString())).toEqual(sent);
    await waitFor(
      () => k.broker.committed('g-compressed')[topic]?.[0] === sent.length,
      'offsets committed past the last batch',
    );
  });
});
