import { createConnection, createServer, type Socket } from 'node:net';
import { freePort } from './mosquitto.js';

/** What an MQTT tap saw: packet ids of QoS 1/2 PUBLISHes sent to the client, and of the PUBACKs it sent back. */
export interface MqttTap {
  /** `mqtt://127.0.0.1:<port>`: connect the client under test here instead of to the broker. */
  readonly url: string;
  /** Packet ids of QoS > 0 PUBLISH packets from the broker to the client, in the order they left the broker. */
  readonly publishes: number[];
  /** Packet ids of PUBACK packets from the client to the broker, in the order the client sent them. */
  readonly pubacks: number[];
  /** Packet ids of PUBREC packets from the client (QoS 2, first answer). */
  readonly pubrecs: number[];
  /** Packet ids of PUBCOMP packets from the client (QoS 2, last answer). */
  readonly pubcomps: number[];
  /** Types of every packet from the client (3 PUBLISH, 4 PUBACK, 8 SUBSCRIBE, 12 PINGREQ, ...), in order. */
  readonly upstream: number[];
  /** Cut the connections open now (the client sees its connection drop and reconnects); keep listening. */
  drop(): void;
  close(): Promise<void>;
}

/** Split a byte stream into MQTT packets (fixed header + remaining length) and hand each to `on`. */
function framer(on: (type: number, flags: number, body: Buffer) => void): (chunk: Buffer) => void {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      let len = 0;
      let mul = 1;
      let i = 1;
      for (; i < buf.length && i <= 4; i++) {
        const b = buf[i] as number;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) break;
      }
      if (i >= buf.length || buf.length < i + 1 + len) return;
      const h = buf[0] as number;
      on(h >> 4, h & 0x0f, buf.subarray(i + 1, i + 1 + len));
      buf = buf.subarray(i + 1 + len);
    }
  };
}

/**
 * A TCP proxy in front of an MQTT broker that records the packet ids of PUBLISHes (broker -> client) and PUBACKs
 * (client -> broker) as they cross it: the order the client really sent its acknowledgements in.
 */
export async function startMqttTap(brokerUrl: string): Promise<MqttTap> {
  const target = new URL(brokerUrl);
  const publishes: number[] = [];
  const pubacks: number[] = [];
  const pubrecs: number[] = [];
  const pubcomps: number[] = [];
  const upstream: number[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const broker = createConnection({ host: target.hostname, port: Number(target.port) });
    for (const s of [client, broker]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        client.destroy();
        broker.destroy();
      });
    }
    const up = framer((type, _flags, body) => {
      upstream.push(type);
      if (type === 4) pubacks.push(body.readUInt16BE(0));
      if (type === 5) pubrecs.push(body.readUInt16BE(0));
      if (type === 7) pubcomps.push(body.readUInt16BE(0));
    });
    const down = framer((type, flags, body) => {
      if (type === 3 && ((flags >> 1) & 3) > 0) publishes.push(body.readUInt16BE(2 + body.readUInt16BE(0)));
    });
    client.on('data', (c: Buffer) => {
      up(c);
      broker.write(c);
    });
    broker.on('data', (c: Buffer) => {
      down(c);
      client.write(c);
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `mqtt://127.0.0.1:${port}`,
    publishes,
    pubacks,
    pubrecs,
    pubcomps,
    upstream,
    drop: () => {
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
