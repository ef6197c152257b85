import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, type KafkaTestBroker, startKafkaBroker } from '../src/index.js';
import { Reader, Writer } from '../src/protocol.js';
import { crc32c } from '../src/records.js';
import { RawClient } from './helpers.js';

/** A one-record, uncompressed RecordBatch v2 with a valid CRC. */
function batch(value: string): Buffer {
  const record = new Writer();
  const v = Buffer.from(value);
  // attributes, timestampDelta 0, offsetDelta 0, key -1 (null), value, 0 headers — as zig-zag varints.
  const body = Buffer.concat([Buffer.from([0, 0, 0, 1]), Buffer.from([v.length * 2]), v, Buffer.from([0])]);
  record.raw(Buffer.from([body.length * 2])).raw(body);
  const afterCrc = new Writer()
    .int16(0) // attributes
    .int32(0) // last offset delta
    .int64(1_700_000_000_000)
    .int64(1_700_000_000_000)
    .int64(-1)
    .int16(-1)
    .int32(-1)
    .int32(1) // record count
    .raw(record.toBuffer())
    .toBuffer();
  const head = new Writer()
    .int64(0)
    .int32(4 + 1 + 4 + afterCrc.length)
    .int32(0)
    .int8(2);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32c(afterCrc));
  return Buffer.concat([head.toBuffer(), crc, afterCrc]);
}

function produceV3(topic: string, partition: number, records: Buffer, acks = -1): Buffer {
  return new Writer()
    .string(null)
    .int16(acks)
    .int32(1000)
    .array([topic], (w, t) => w.string(t).array([partition], (w, p) => w.int32(p).bytes(records)))
    .toBuffer();
}

function produceError(body: Buffer): { error: number; baseOffset: number } {
  const r = new Reader(body);
  r.int32(); // topics
  r.string();
  r.int32(); // partitions
  r.int32();
  return { error: r.int16(), baseOffset: r.int64() };
}

let broker: KafkaTestBroker;
let client: RawClient;

beforeEach(async () => {
  broker = await startKafkaBroker();
  client = await RawClient.open(broker.port);
});

afterEach(async () => {
  client.close();
  await broker.close();
});

describe('wire protocol edges', () => {
  it('advertises its versions with ApiVersions v0-v2 and answers a too-new ApiVersions with a v0 error body', async () => {
    for (const version of [0, 1, 2]) {
      const r = new Reader(await client.send(18, version, Buffer.alloc(0)));
      expect(r.int16()).toBe(ErrorCode.NONE);
      const apis = r.array((r) => [r.int16(), r.int16(), r.int16()] as const)!;
      expect(apis).toContainEqual([18, 0, 2]);
      expect(apis).toContainEqual([0, 3, 7]);
      expect(apis).toContainEqual([1, 4, 11]);
      expect(r.remaining()).toBe(version >= 1 ? 4 : 0);
    }
    const r = new Reader(await client.send(18, 3, Buffer.from([0, 0, 0])));
    expect(r.int16()).toBe(ErrorCode.UNSUPPORTED_VERSION);
    expect(r.array((r) => [r.int16(), r.int16(), r.int16()])!.length).toBeGreaterThan(10);
  });

  it('answers unknown API keys and unsupported versions with UNSUPPORTED_VERSION and keeps the connection', async () => {
    const unknown = new Reader(await client.send(57, 0, Buffer.alloc(0)));
    expect(unknown.int16()).toBe(ErrorCode.UNSUPPORTED_VERSION);
    const tooOld = new Reader(await client.send(0, 2, Buffer.alloc(0)));
    expect(tooOld.int16()).toBe(ErrorCode.UNSUPPORTED_VERSION);
    // The same connection still serves requests.
    const ok = new Reader(await client.send(18, 0, Buffer.alloc(0)));
    expect(ok.int16()).toBe(ErrorCode.NONE);
  });

  it('validates produced batches (CRC, magic, partition) and sends nothing back for acks=0', async () => {
    broker.createTopic('raw', 1);
    const good = batch('hello');
    expect(produceError(await client.send(0, 3, produceV3('raw', 0, good)))).toEqual({
      error: 0,
      baseOffset: 0,
    });

    const corrupt = Buffer.from(good);
    corrupt.writeUInt8(corrupt.readUInt8(corrupt.length - 2) ^ 0xff, corrupt.length - 2);
    expect(produceError(await client.send(0, 3, produceV3('raw', 0, corrupt))).error).toBe(
      ErrorCode.CORRUPT_MESSAGE,
    );

    const oldMagic = Buffer.from(good);
    oldMagic[16] = 1;
    expect(produceError(await client.send(0, 3, produceV3('raw', 0, oldMagic))).error).toBe(
      ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT,
    );
    expect(produceError(await client.send(0, 3, produceV3('raw', 5, good))).error).toBe(
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    );
    expect(produceError(await client.send(0, 3, produceV3('missing', 0, good))).error).toBe(
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    );

    await client.send(0, 3, produceV3('raw', 0, batch('fire-and-forget'), 0), false);
    // Responses come in request order, so once this answer arrives the acks=0 batch is stored.
    expect(produceError(await client.send(0, 3, produceV3('raw', 0, batch('last')))).baseOffset).toBe(2);
    expect(broker.produced('raw').map((r) => [r.offset, String(r.value)])).toEqual([
      [0, 'hello'],
      [1, 'fire-and-forget'],
      [2, 'last'],
    ]);
  });

  it('closes the connection of a killed client id and accepts it again once revived', async () => {
    broker.killClient('raw-client');
    await client.send(18, 0, Buffer.alloc(0), false);
    await client.closed;
    broker.reviveClient('raw-client');
    client = await RawClient.open(broker.port);
    expect(new Reader(await client.send(18, 0, Buffer.alloc(0))).int16()).toBe(ErrorCode.NONE);
  });
});
