import { type Connector, type Env, EnvReader, type Logger } from '@connector/core';
import { startGateway, type TestGateway } from '@connector/testing/gateway';
import { main } from './main.js';

/** Options of `startDemo`. */
export interface DemoOptions {
  /** Environment; `gateway_url` set means: no demo gateway, use that one. */
  env?: Env;
  /** Port of the demo gateway (default env `demo_gateway_port`, else 8080; an ephemeral port when it is taken). */
  port?: number;
  /** Handle SIGTERM/SIGINT (default true). */
  signals?: boolean;
  /** Logger (default: pino at env `log_level`). */
  logger?: Logger;
  /** Where the one-line "what is happening" notice goes (default stdout). */
  print?: (line: string) => void;
}

const DEFAULT_PORT = 8080;

async function demoGateway(port: number): Promise<TestGateway> {
  const functions = [
    {
      name: 'hello',
      annotations: { topic: 'cron-function', schedule: '*/2 * * * * *' },
      handler: () => ({ body: `Hello from the demo function at ${new Date().toISOString()}\n` }),
    },
  ];
  try {
    return await startGateway({ port, functions });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    return startGateway({ port: 0, functions });
  }
}

/**
 * `pnpm start`: without `gateway_url`, start the in-repo OpenFaaS-compatible gateway with a cron-annotated demo
 * function and run the timer connector against it, printing responses; with `gateway_url`, just run the connector.
 */
export async function startDemo(
  options: DemoOptions = {},
): Promise<{ connector: Connector; gateway?: TestGateway }> {
  const env = options.env ?? process.env;
  const extra = {
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.signals === undefined ? {} : { signals: options.signals }),
  };
  if (env['gateway_url']) return { connector: await main(env, extra) };
  const port =
    options.port ?? new EnvReader(env).int('demo_gateway_port', { min: 0, max: 65_535 }) ?? DEFAULT_PORT;
  const gateway = await demoGateway(port);
  const print = options.print ?? ((line: string) => void process.stdout.write(line));
  const busy = port !== 0 && !gateway.url.endsWith(`:${port}`) ? ` (port ${port} was busy)` : '';
  print(
    `demo gateway at ${gateway.url}${busy} with function hello (topic: cron-function, every 2 s); set gateway_url to use your own gateway\n`,
  );
  let connector: Connector;
  try {
    connector = await main(
      {
        print_response: 'true',
        print_response_body: 'true',
        rebuild_interval: '5s',
        ...env,
        gateway_url: gateway.url,
      },
      extra,
    );
  } catch (err) {
    await gateway.close();
    throw err;
  }
  const stop = connector.stop.bind(connector);
  return {
    gateway,
    connector: Object.assign(connector, {
      stop: async () => {
        await stop();
        await gateway.close();
      },
    }),
  };
}
