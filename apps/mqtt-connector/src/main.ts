#!/usr/bin/env node
import { type CliIo, connectorCli, isEntryPoint } from '@connector/core';
import { otlpTracing } from '@connector/otel';
import { MQTT_SETTINGS, startMqttConnector } from './app.js';

/** The command line: `--help` lists the settings; otherwise start, exit 2 on bad configuration (one line). */
export function cli(argv: readonly string[] = process.argv.slice(2), io?: Partial<CliIo>) {
  return connectorCli({
    name: 'mqtt-connector',
    settings: MQTT_SETTINGS,
    usage:
      '[env settings] mqtt-connector [-broker=URL] [-topic=filter] [-id=client] [-qos=1] ... (the Go flags)',
    argv,
    tracing: otlpTracing,
    start: () => startMqttConnector({ argv }),
    ...(io ? { io } : {}),
  });
}

if (isEntryPoint(import.meta.url)) void cli();
