import type { Connector, Env, Logger } from '@connector/core';
import { startGateway, type TestGateway } from '@connector/testing/gateway';
import { startTimerConnector } from './app.js';

/** Options of `startDemo`. */
export interface DemoOptions {
  /** Environment; `gateway_url` set means: no demo gateway, use that one. */
  env?: Env;
  /** Port of the demo gateway (default 8080; an ephemeral port when it is taken). */
  port?: number;
  signals?: boolean;
  logger?: Logger;
}

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
  if (env['gateway_url']) return { connector: await startTimerConnector({ env, ...extra }) };
  const gateway = await demoGateway(options.port ?? Number(env['demo_gateway_port'] ?? 8080));
  process.stdout.write(
    `demo gateway at ${gateway.url} with function hello (topic: cron-function, every 2 s); set gateway_url to use your own gateway\n`,
  );
  const connector = await startTimerConnector({
    env: {
      print_response: 'true',
      print_response_body: 'true',
      rebuild_interval: '5s',
      ...env,
      gateway_url: gateway.url,
    },
    ...extra,
  });
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
