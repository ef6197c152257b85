import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';

/** An in-process aedes broker (MQTT 3.1.1 only, no shared subscriptions) with the same shape as startMosquitto. */
export interface AedesBroker {
  readonly url: string;
  readonly port: number;
  /** Close the listener and every connection, then listen again on the same port (sessions kept in memory). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Start aedes on a free loopback port. */
export async function startAedes(options: { websocket?: boolean } = {}): Promise<AedesBroker> {
  const broker = await Aedes.createBroker();
  const sockets = new Set<Socket>();
  let server: Server;
  const track = (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      if (options.websocket) {
        const http = createHttpServer();
        http.on('connection', track);
        const wss = new WebSocketServer({ server: http });
        wss.on('connection', (ws) => broker.handle(createWebSocketStream(ws)));
        server = http;
      } else {
        server = createServer((s) => {
          track(s);
          broker.handle(s);
        });
      }
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        const a = server.address();
        resolve(typeof a === 'object' && a ? a.port : 0);
      });
    });
  const close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  const port = await listen(0);
  return {
    url: `${options.websocket ? 'ws' : 'mqtt'}://127.0.0.1:${port}`,
    port,
    async restart() {
      await close();
      await listen(port);
    },
    async stop() {
      await close();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}
