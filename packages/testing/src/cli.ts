import { parseArgs } from 'node:util';
import { parseFunctionArg } from './args.js';
import { startGateway } from './gateway.js';

const usage = `connector-test-gateway [--port 8080] [--host 127.0.0.1] [--function name:topic[,topic2][@namespace]]...
                       [--cron 'name:*/5 * * * * *[@namespace]']... [--user u --password p]
An OpenFaaS-compatible gateway for tests and demos; functions echo their request body.`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      function: { type: 'string', multiple: true, default: [] },
      cron: { type: 'string', multiple: true, default: [] },
      user: { type: 'string' },
      password: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port ${values.port}: expected 0-65535`);
  const functions = [
    ...values.function.map((f) => parseFunctionArg(f, 'topic')),
    ...values.cron.map((f) => parseFunctionArg(f, 'schedule')),
  ];
  if ((values.user === undefined) !== (values.password === undefined))
    throw new Error('--user and --password go together');
  const g = await startGateway({
    port,
    host: values.host,
    functions,
    ...(values.user !== undefined && values.password !== undefined
      ? { credentials: { username: values.user, password: values.password } }
      : {}),
  });
  console.log(`test gateway listening at ${g.url} with ${functions.length} function(s)`);
  for (const f of functions)
    console.log(`  ${f.name}.${f.namespace ?? 'openfaas-fn'} ${JSON.stringify(f.annotations)}`);
  const stop = () => {
    void g.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(`connector-test-gateway: ${(err as Error).message}`);
  process.exit(1);
});
