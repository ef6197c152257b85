import { connect, type Socket } from 'node:net';
import { Kafka, type KafkaConfig, logLevel } from 'kafkajs';
import { Writer } from '../src/protocol.js';

/** What `waitFor` resolves with: the condition's value minus its falsy cases. */
export type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

/** Polls `cond` until it is truthy or `timeout` ms pass; rejects with `message` on timeout. */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  {
    timeout = 10_000,
    interval = 20,
    message = 'condition',
  }: { timeout?: number; interval?: number; message?: string } = {},
): Promise<Truthy<T>> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await cond();
    if (value) return value as Truthy<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${message}`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** A kafkajs client for the test broker, quiet and with fast retries. */
export function kafka(brokers: string[], clientId: string, extra: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.NOTHING,
    retry: { initialRetryTime: 50, maxRetryTime: 1000, retries: 30 },
    ...extra,
  });
}

/** A bare Kafka protocol client: request header v1, response header v0, responses matched by correlation id. */
export class RawClient {
  private buf = Buffer.alloc(0);
  private readonly waiting = new Map<number, (body: Buffer) => void>();
  private nextId = 1;
  closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      while (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readInt32BE(0)) {
        const size = this.buf.readInt32BE(0);
        const frame = this.buf.subarray(4, 4 + size);
        this.buf = this.buf.subarray(4 + size);
        const id = frame.readInt32BE(0);
        this.waiting.get(id)?.(frame.subarray(4));
        this.waiting.delete(id);
      }
    });
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Sends a request; resolves with the response body (after the correlation id). */
  send(apiKey: number, version: number, body: Buffer, expectResponse = true): Promise<Buffer> {
    const id = this.nextId++;
    const header = new Writer().int16(apiKey).int16(version).int32(id).string('raw-client').toBuffer();
    const size = Buffer.alloc(4);
    size.writeInt32BE(header.length + body.length);
    this.socket.write(Buffer.concat([size, header, body]));
    if (!expectResponse) return Promise.resolve(Buffer.alloc(0));
    return new Promise((resolve) => this.waiting.set(id, resolve));
  }

  close(): void {
    this.socket.destroy();
  }
}
