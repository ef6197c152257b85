import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  CORE_SETTINGS,
  type ControllerOptions,
  configFromEnv,
  type Env,
  envNamesRead,
  type Setting,
  settingsHelp,
  unknownSettings,
  wantsHelp,
} from './config.js';
import { type Connector, type ConnectorOptions, runConnector } from './connector.js';
import { createController } from './controller.js';
import { createLogger, errorFields } from './logger.js';
import { redactSecrets } from './secrets.js';
import type { Source } from './source.js';
import type { Logger } from './types.js';

/** Options of `startConnectorFromEnv`. */
export interface FromEnvOptions<S extends Source> {
  /** Default connector name (`X-Connector`, logger name) unless env `connector_name` sets one. */
  name: string;
  /** Build the source from the same environment (e.g. `(env) => mqttSource(mqttOptionsFromEnv(env))`). */
  source: (env: Env) => S;
  /** Environment (default `process.env`). */
  env?: Env;
  /** Handle SIGTERM/SIGINT (default true). */
  signals?: boolean;
  /** Logger (default: pino at env `log_level`). */
  logger?: Logger;
  /** Controller settings that env does not carry (e.g. `{ topicMatcher: 'mqtt' }`). */
  controller?: Partial<ControllerOptions>;
  /** The app's own env settings besides core's (its source's, for `--help` and the misspelling check). */
  settings?: readonly Setting[];
  /** Connector settings derived from the source (e.g. its dead-letter handler). */
  connector?: (source: S) => Partial<Omit<ConnectorOptions, 'controller' | 'source'>>;
}

/**
 * What every deployable connector does: read the OpenFaaS env names (`configFromEnv`), build the source from the
 * same env, then run controller + source with signal handling. Invalid env throws a one-line ConfigError.
 */
export async function startConnectorFromEnv<S extends Source>(
  options: FromEnvOptions<S>,
): Promise<Connector> {
  const env = options.env ?? process.env;
  const config = configFromEnv(env);
  const source = options.source(env);
  const name = config.connectorName ?? options.name;
  const logger = options.logger ?? createLogger({ level: config.logLevel, name });
  const known = [...CORE_SETTINGS, ...(options.settings ?? [])].map((s) => s.name);
  for (const u of unknownSettings([...known, ...envNamesRead()], env))
    logger.warn({ setting: u.name }, `unknown setting ${u.name}; did you mean ${u.suggestion}?`);
  const { logLevel: _level, http, ...rest } = config;
  const controller = createController({ ...rest, connectorName: name, ...options.controller, logger });
  logger.info({ gateway: config.gatewayUrl, source: source.name }, `starting ${name}`);
  return runConnector({
    ...rest,
    ...options.connector?.(source),
    controller,
    source,
    http,
    logger,
    signals: options.signals ?? true,
  });
}

/** Where `connectorCli` writes and how it exits (tests pass their own). */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  exit(code: number): void;
}

/** Options of `connectorCli`. */
export interface CliOptions {
  /** The app's name, e.g. `mqtt-connector`. */
  name: string;
  /** The app's own settings (its source's), listed by `--help` before core's. */
  settings: readonly Setting[];
  /** Command-line arguments (`process.argv.slice(2)`). */
  argv: readonly string[];
  /** Start the connector (read env, build the source, run). */
  start: () => Promise<Connector>;
  /** Usage line after `usage: ` (default `[env settings] <name>`). */
  usage?: string;
  /** Output and exit (default process.stdout/stderr and process.exit). */
  io?: Partial<CliIo>;
  /** Trace export of the process (`otlpTracing` from @connector/otel): started before the connector, shut down
   * (flushing its spans) after the connector stopped; its settings are listed by `--help`. */
  tracing?: CliTracing;
}

/** A trace exporter the CLI starts for the process (core itself only uses `@opentelemetry/api`). */
export interface CliTracing {
  /** Its env settings, for `--help`. */
  readonly settings: readonly Setting[];
  /** Register the SDK if the environment asks for it (undefined: tracing stays off). May throw a ConfigError. */
  start(serviceName: string): { shutdown(): Promise<void> } | undefined;
}

/**
 * What every connector's `main.js` does: `--help`, `-h` or `help` prints its settings with their defaults and exits
 * 0; otherwise start, and on a startup failure print one line (no stack) and exit 2 on bad configuration, else 1.
 */
export async function connectorCli(options: CliOptions): Promise<Connector | undefined> {
  const io: CliIo = {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    exit: (code) => process.exit(code),
    ...options.io,
  };
  if (wantsHelp(options.argv)) {
    const settings = [...options.settings, ...(options.tracing?.settings ?? [])];
    io.stdout(settingsHelp(options.name, settings, options.usage));
    io.exit(0);
    return undefined;
  }
  let tracing: { shutdown(): Promise<void> } | undefined;
  try {
    tracing = options.tracing?.start(options.name);
    const connector = await options.start();
    if (tracing !== undefined) {
      // After the drain (a signal's graceful stop ends in this stop too), export the last spans before exit.
      const t = tracing;
      const { stop } = connector;
      connector.stop = () => stop().finally(() => t.shutdown().catch(() => undefined));
    }
    return connector;
  } catch (err) {
    await tracing?.shutdown().catch(() => undefined);
    const { message, code } = errorFields(err);
    io.stderr(`${options.name}: ${redactSecrets(message.trim())}\n`);
    io.exit(code === 'ERR_CONFIG' ? 2 : 1);
    return undefined;
  }
}

/** True when `moduleUrl` (`import.meta.url`) is the process's entry point, false when it is imported. */
export function isEntryPoint(moduleUrl: string): boolean {
  const argv1 = process.argv[1];
  if (argv1 === undefined) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}
