import { parseArgs } from 'node:util';
import { parseFunctionArg } from './args.js';
import { type FunctionCall, startGateway, type TestGateway } from './gateway.js';

/** Usage text of `connector-test-gateway`. */
export const USAGE = `connector-test-gateway [--port 8080] [--host 127.0.0.1] [--function name:topic[,topic2][@namespace]]...
                       [--cron 'name:*/5 * * * * *[@namespace]']... [--user u --password p] [--quiet]
                       [--tls-cert server.crt --tls-key server.key [--tls-ca ca.crt --tls-require-client-cert]]
                       [--iam-token ID_TOKEN... [--iam-expires-in 60]]
An OpenFaaS-compatible gateway for tests and demos; functions echo their request body.
--tls-* serve HTTPS (mutual TLS with --tls-require-client-cert); --iam-token turns on OpenFaaS IAM: /oauth/token
exchanges that identity token (RFC 8693) and /system/* needs the access token as Bearer.
Each function call is logged on one line (function, X-Topic, status, request bytes, ms); --quiet turns that off.`;

/** One log line for a function call: `invoke echo.openfaas-fn topic=orders status=200 bytes=12 ms=3`. */
export function formatCall(call: FunctionCall): string {
  return `${call.async ? 'invoke-async' : 'invoke'} ${call.function} topic=${call.topic ?? '-'} status=${call.status || 'none'} bytes=${call.bytes} ms=${Math.round(call.ms)}`;
}

/** Parse the CLI arguments and start the gateway, printing its address, functions and (unless --quiet) each call on `out`. */
export async function runGatewayCli(
  argv: string[],
  out: (line: string) => void = console.log,
): Promise<TestGateway | null> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      function: { type: 'string', multiple: true, default: [] },
      cron: { type: 'string', multiple: true, default: [] },
      user: { type: 'string' },
      password: { type: 'string' },
      quiet: { type: 'boolean', short: 'q', default: false },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-ca': { type: 'string' },
      'tls-require-client-cert': { type: 'boolean', default: false },
      'iam-token': { type: 'string', multiple: true, default: [] },
      'iam-expires-in': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    out(USAGE);
    return null;
  }
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) throw new Error(`--port ${values.port}: expected 0-65535`);
  const functions = [
    ...values.function.map((f) => parseFunctionArg(f, 'topic')),
    ...values.cron.map((f) => parseFunctionArg(f, 'schedule')),
  ];
  if ((values.user === undefined) !== (values.password === undefined))
    throw new Error('--user and --password go together');
  const cert = values['tls-cert'];
  const key = values['tls-key'];
  if ((cert === undefined) !== (key === undefined)) throw new Error('--tls-cert and --tls-key go together');
  if (cert === undefined && (values['tls-ca'] !== undefined || values['tls-require-client-cert']))
    throw new Error('--tls-ca and --tls-require-client-cert need --tls-cert and --tls-key');
  const expiresIn = values['iam-expires-in'];
  if (expiresIn !== undefined && !/^[1-9]\d*$/.test(expiresIn))
    throw new Error(`--iam-expires-in ${expiresIn}: expected whole seconds >= 1`);
  const g = await startGateway({
    port,
    host: values.host,
    functions,
    ...(values.user !== undefined && values.password !== undefined
      ? { credentials: { username: values.user, password: values.password } }
      : {}),
    ...(values.quiet ? {} : { onCall: (call: FunctionCall) => out(formatCall(call)) }),
    ...(cert !== undefined && key !== undefined
      ? {
          tls: {
            cert,
            key,
            ...(values['tls-ca'] === undefined ? {} : { ca: values['tls-ca'] }),
            requestCert: values['tls-require-client-cert'],
          },
        }
      : {}),
    ...(values['iam-token'].length > 0
      ? {
          iam: {
            identityTokens: values['iam-token'],
            ...(expiresIn === undefined ? {} : { expiresIn: Number(expiresIn) }),
          },
        }
      : {}),
  });
  out(`test gateway listening at ${g.url} with ${functions.length} function(s)`);
  for (const f of functions)
    out(`  ${f.name}.${f.namespace ?? 'openfaas-fn'} ${JSON.stringify(f.annotations)}`);
  return g;
}
