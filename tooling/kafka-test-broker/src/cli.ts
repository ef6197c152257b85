#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { BrokerConfigError, type KafkaTestBroker, startKafkaBroker } from './broker.js';

const USAGE = `Usage: kafka-test-broker [--port N] [--host H] [--partitions N] [--no-auto-create] [--verbose]
A Kafka wire-protocol broker for tests (in memory, single node). Ctrl-C stops it.`;

/** Parses CLI arguments and starts the broker; prints one line with its address on `out`. */
export async function runCli(
  argv: string[],
  out: (line: string) => void = console.log,
): Promise<KafkaTestBroker | null> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '9092' },
      host: { type: 'string', default: '127.0.0.1' },
      partitions: { type: 'string', default: '1' },
      'no-auto-create': { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    out(USAGE);
    return null;
  }
  const int = (setting: string, raw: string): number => {
    if (!/^\d+$/.test(raw))
      throw new BrokerConfigError(
        setting,
        `--${setting}: got ${JSON.stringify(raw)}, expected a whole number`,
      );
    return Number(raw);
  };
  const broker = await startKafkaBroker({
    port: int('port', values.port),
    host: values.host,
    partitions: int('partitions', values.partitions),
    autoCreateTopics: !values['no-auto-create'],
    ...(values.verbose ? { log: (line: string) => out(`kafka-test-broker: ${line}`) } : {}),
  });
  out(`kafka-test-broker listening on ${broker.brokers[0]}`);
  return broker;
}

async function main(): Promise<void> {
  let broker: KafkaTestBroker | null;
  try {
    broker = await runCli(process.argv.slice(2));
  } catch (err) {
    console.error(`kafka-test-broker: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 2;
    return;
  }
  if (broker === null) return;
  const running = broker;
  const stop = () => {
    running.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(realpathSync(entry)).href) {
  main().catch((err: unknown) => {
    console.error(`kafka-test-broker: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  });
}
