import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { whenParentGone } from './parent.js';

/**
 * The gateway under the benchmark: a minimal node:http server answering the OpenFaaS routes, in its own process.
 *
 * - `BENCH_MODE=hang` (or `--hang`) never answers function calls (the stalled-gateway case).
 * - The function list is `BENCH_FUNCTIONS` (or `--functions`): JSON, an array of
 *   `{ name, namespace?, annotations? }`; default `echo` in `openfaas-fn` with `topic: bench`,
 *   `echo-e2e` with `topic: e2e/#` and `echo-batch` with `topic: bench-batch` and `connector.dev/batch-size: 100`.
 * - `BENCH_PORT` (or `--port`), default ephemeral. Prints `PORT <n>` when listening.
 * - `BENCH_EXIT_WITH_PARENT=1`: exits when its stdin ends (`pnpm bench` gives it a pipe that closes with the bench).
 *
 * Routes: GET /system/namespaces, GET /system/functions[?namespace=], POST /function/<name>[.<ns>] (echoes the body,
 * 200), POST /async-function/<name> (202 with X-Call-Id), GET /healthz.
 */
const argv = process.argv.slice(2);
const arg = (flag: string) => {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
};
const mode = argv.includes('--hang') ? 'hang' : (process.env['BENCH_MODE'] ?? 'echo');
// `echo-e2e` is for the MQTT 16-topic end-to-end case (wildcard `e2e/#`, matched with the MQTT matcher there);
// `echo-batch` (batch size 100; its echo of the batch body lists no failures) for the end-to-end batch cases.
const defaults = [
  { name: 'echo', namespace: 'openfaas-fn', annotations: { topic: 'bench' } },
  { name: 'echo-e2e', namespace: 'openfaas-fn', annotations: { topic: 'e2e/#' } },
  {
    name: 'echo-batch',
    namespace: 'openfaas-fn',
    annotations: { topic: 'bench-batch', 'connector.dev/batch-size': '100' },
  },
];
const configured = arg('--functions') ?? process.env['BENCH_FUNCTIONS'];
let list: { name: string; namespace?: string; annotations?: Record<string, string> }[];
try {
  list = configured ? JSON.parse(configured) : defaults;
  if (!Array.isArray(list) || list.some((f) => typeof f?.name !== 'string')) throw new Error('not a list');
} catch {
  process.stderr.write(
    `invalid BENCH_FUNCTIONS=${configured}: expected a JSON array like [{"name":"echo","annotations":{"topic":"bench"}}]\n`,
  );
  process.exit(2);
}
const namespaces = [...new Set(list.map((f) => f.namespace ?? 'openfaas-fn'))];
const byNamespace = new Map(
  namespaces.map((ns) => [
    ns,
    JSON.stringify(
      list
        .filter((f) => (f.namespace ?? 'openfaas-fn') === ns)
        .map((f) => ({
          name: f.name,
          namespace: ns,
          annotations: f.annotations ?? {},
          labels: null,
          replicas: 1,
        })),
    ),
  ]),
);
const held: ServerResponse[] = [];

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
  const json = (text: string) => void res.writeHead(200, { 'content-type': 'application/json' }).end(text);
  if (url === '/system/namespaces') return json(JSON.stringify(namespaces));
  if (url.startsWith('/system/functions')) {
    const ns = new URL(url, 'http://x').searchParams.get('namespace') ?? 'openfaas-fn';
    return json(byNamespace.get(ns) ?? '[]');
  }
  res.writeHead(url === '/healthz' ? 200 : 404).end();
});
server.keepAliveTimeout = 60_000;
server.listen(Number(arg('--port') ?? process.env['BENCH_PORT'] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`);
});
const shutDown = () => {
  for (const r of held) r.destroy();
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', shutDown);
// Started by `pnpm bench`: end with it, however it ends (a killed bench left its gateway running before).
whenParentGone(shutDown);
