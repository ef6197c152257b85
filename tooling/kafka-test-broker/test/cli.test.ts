import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli.js';
import type { KafkaTestBroker } from '../src/index.js';
import { kafka } from './helpers.js';

let broker: KafkaTestBroker | null = null;

afterEach(async () => {
  await broker?.close();
  broker = null;
});

describe('cli', () => {
  it('starts a broker with --port and --partitions and prints its address', async () => {
    const lines: string[] = [];
    broker = await runCli(['--port', '0', '--partitions', '3'], (line) => lines.push(line));
    expect(broker).not.toBeNull();
    expect(lines).toEqual([`kafka-test-broker listening on 127.0.0.1:${broker!.port}`]);

    // A producer's Metadata request auto-creates the topic with the --partitions default.
    const producer = kafka(broker!.brokers, 'cli-producer').producer();
    await producer.connect();
    try {
      await producer.send({ topic: 'auto', messages: [{ value: 'x' }] });
    } finally {
      await producer.disconnect();
    }
    expect(broker!.endOffsets('auto')).toHaveLength(3);
    expect(broker!.produced('auto')).toHaveLength(1);
  });

  it('rejects bad values with one line naming the setting', async () => {
    await expect(runCli(['--port', 'abc'])).rejects.toThrow('--port: got "abc", expected a whole number');
    await expect(runCli(['--port', '0', '--partitions', '0'])).rejects.toThrow(
      'partitions: got 0, expected an integer from 1 to 100000',
    );
    await expect(runCli(['--bogus'])).rejects.toThrow(/bogus/);
  });

  it('prints usage for --help without starting anything', async () => {
    const lines: string[] = [];
    expect(await runCli(['--help'], (line) => lines.push(line))).toBeNull();
    expect(lines[0]).toMatch(/^Usage: kafka-test-broker/);
  });
});
