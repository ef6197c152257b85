#!/usr/bin/env node
import { type CliIo, connectorCli, isEntryPoint } from '@connector/core';
import { otlpTracing } from '@connector/otel';
import { NATS_SETTINGS, startNatsConnector } from './app.js';

/** The command line: `--help` lists the settings; otherwise start, exit 2 on bad configuration (one line). */
export function cli(argv: readonly string[] = process.argv.slice(2), io?: Partial<CliIo>) {
  return connectorCli({
    name: 'nats-connector',
    settings: NATS_SETTINGS,
    argv,
    tracing: otlpTracing,
    start: () => startNatsConnector(),
    ...(io ? { io } : {}),
  });
}

if (isEntryPoint(import.meta.url)) void cli();
