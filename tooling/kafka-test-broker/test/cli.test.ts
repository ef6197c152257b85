import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCertificates } from '@connector/testing';
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

  it('serves TLS from PEM files and SASL users from --sasl-user', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kafka-cli-tls-'));
    try {
      const certs = testCertificates(dir);
      const lines: string[] = [];
      broker = await runCli(
        [
          '--port',
          '0',
          '--tls-cert',
          certs.serverCert,
          '--tls-key',
          certs.serverKey,
          '--sasl-user',
          'scram-sha-256/app:pa:ss',
        ],
        (line) => lines.push(line),
      );
      expect(lines).toEqual([`kafka-test-broker listening on 127.0.0.1:${broker!.port} (TLS + SASL)`]);
      const producer = kafka(broker!.brokers, 'cli-secure', {
        ssl: { ca: await readFile(certs.ca, 'utf8') },
        sasl: { mechanism: 'scram-sha-256', username: 'app', password: 'pa:ss' },
      }).producer();
      await producer.connect();
      try {
        await producer.send({ topic: 'secure', messages: [{ value: 'x' }] });
      } finally {
        await producer.disconnect();
      }
      expect(broker!.produced('secure')).toHaveLength(1);
      await expect(runCli(['--tls-key', certs.serverKey])).rejects.toThrow(
        '--tls-cert: required with the other --tls-* options',
      );
      await expect(runCli(['--sasl-user', 'no-password'])).rejects.toThrow(
        '--sasl-user: expected [MECHANISM/]USER:PASSWORD',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
