import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The gateway under the benchmark: a minimal node:http server answering the OpenFaaS routes, in its own process.
 * `BENCH_MODE=hang` never answers function calls (the stalled-gateway case). Prints `PORT <n>` when listening.
 */
const mode = process.env['BENCH_MODE'] ?? 'echo';
const functions = JSON.stringify([
  { name: 'echo', namespace: 'openfaas-fn', annotations: { topic: 'bench' }, labels: null, replicas: 1 },
]);
const held: import('node:http').ServerResponse[] = [];

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (url.startsWith('/function/') || url.startsWith('/async-function/')) {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (mode === 'hang') {
        held.push(res);
        return;
      }
      if (url.startsWith('/async-function/')) {
        res.writeHead(202, { 'x-call-id': '00000000-0000-0000-0000-000000000000' }).end();
        return;
      }
      const body = Buffer.concat(chunks);
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length }).end(body);
    });
    return;
  }
  if (url === '/system/namespaces')
    return void res.writeHead(200, { 'content-type': 'application/json' }).end('["openfaas-fn"]');
  if (url.startsWith('/system/functions'))
    return void res.writeHead(200, { 'content-type': 'application/json' }).end(functions);
  res.writeHead(url === '/healthz' ? 200 : 404).end();
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env['BENCH_PORT'] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => {
  for (const r of held) r.destroy();
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
