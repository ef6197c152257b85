/**
 * OTLP trace export for connector apps, on only when the standard OpenTelemetry environment asks for it. Core
 * traces through `@opentelemetry/api` alone; this module is the one place an SDK is registered.
 */
import { type CliTracing, ConfigError, type Env, type Setting } from '@connector/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

/** The standard OpenTelemetry settings a connector reads, for `--help`. */
export const OTEL_SETTINGS: readonly Setting[] = [
  {
    name: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
    help: 'OTLP/HTTP URL for spans, e.g. http://collector:4318/v1/traces (no endpoint: tracing off)',
  },
  {
    name: 'OTEL_EXPORTER_OTLP_ENDPOINT',
    help: 'OTLP/HTTP base URL; spans go to <url>/v1/traces',
  },
  { name: 'OTEL_TRACES_EXPORTER', default: 'otlp', help: '`none` turns tracing off' },
  { name: 'OTEL_SERVICE_NAME', help: 'service.name of the spans (default: the connector name)' },
];

/** A running trace export. */
export interface Tracing {
  /** Where spans are sent. */
  readonly url: string;
  /** Export what is buffered and stop (call after the connector drained). */
  shutdown(): Promise<void>;
}

/** Options of `startTracing`. */
export interface TracingOptions {
  /** `service.name` unless `OTEL_SERVICE_NAME` (or `OTEL_RESOURCE_ATTRIBUTES`) sets one. */
  serviceName: string;
  /** Environment (default `process.env`). */
  env?: Env;
}

const value = (env: Env, name: string): string | undefined => {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
};

/**
 * The OTLP traces URL the environment asks for, or undefined when tracing stays off: no endpoint set,
 * `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true`. Throws a ConfigError for an exporter other than `otlp`
 * or an endpoint that is not an http(s) URL.
 */
export function otlpTracesUrl(env: Env = process.env): string | undefined {
  if (value(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return undefined;
  const exporters = (value(env, 'OTEL_TRACES_EXPORTER') ?? 'otlp')
    .split(',')
    .map((s) => s.trim().toLowerCase());
  if (exporters.includes('none')) return undefined;
  for (const e of exporters)
    if (e !== 'otlp')
      throw ConfigError.invalid('OTEL_TRACES_EXPORTER', env['OTEL_TRACES_EXPORTER'], 'otlp or none');
  const traces = value(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const base = value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  const name = traces !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT';
  const raw = traces ?? base;
  if (raw === undefined) return undefined;
  // An endpoint may carry credentials (user:password@): the error names the setting, never the value's secrets.
  const expected = 'expected an http or https URL like http://collector:4318';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, `invalid ${name} (value not shown): ${expected}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ConfigError(
      name,
      `invalid ${name}=${JSON.stringify(`${url.protocol}//${url.host}${url.pathname}`)} (credentials removed): ${expected}`,
    );
  // The per-signal endpoint is used as it is; the base one gets the signal's path (OTLP exporter spec).
  return traces !== undefined ? raw : `${raw.replace(/\/+$/, '')}/v1/traces`;
}

/**
 * Register an OpenTelemetry SDK that exports spans over OTLP/HTTP when the standard environment asks for it
 * (`otlpTracesUrl`), else do nothing and return undefined (core's tracing stays a no-op). Further OTLP settings
 * (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`, `OTEL_TRACES_SAMPLER`, `OTEL_RESOURCE_ATTRIBUTES`) apply as usual.
 */
export function startTracing(options: TracingOptions): Tracing | undefined {
  const env = options.env ?? process.env;
  const url = otlpTracesUrl(env);
  if (url === undefined) return undefined;
  const resource = defaultResource()
    .merge(resourceFromAttributes({ 'service.name': options.serviceName }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }))],
  });
  provider.register();
  return { url, shutdown: () => provider.shutdown() };
}

/** For `connectorCli({ tracing: otlpTracing })`: OTLP export from the standard env, flushed after the drain. */
export const otlpTracing: CliTracing = {
  settings: OTEL_SETTINGS,
  start: (serviceName) => startTracing({ serviceName }),
};
