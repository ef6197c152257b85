import { SQSClient } from '@aws-sdk/client-sqs';
import { CORE_SETTINGS, envNamesRead, unknownSettings } from '@connector/core';
import { sqsOptionsFromEnv } from '@connector/source-sqs';
import { describe, expect, it } from 'vitest';
import { cli, SQS_SETTINGS } from '../src/index.js';

describe('sqs-connector settings', () => {
  it.each(['--help', '-h', 'help'])('%s lists env names with defaults and exits 0', async (flag) => {
    let out = '';
    const codes: number[] = [];
    const connector = await cli([flag], {
      stdout: (t) => {
        out += t;
      },
      stderr: (t) => {
        throw new Error(`unexpected stderr: ${t}`);
      },
      exit: (code) => void codes.push(code),
    });
    expect(connector).toBeUndefined();
    expect(codes).toEqual([0]);
    expect(out).toMatch(/^usage: .*sqs-connector/);
    expect(out).toMatch(/queue_url +\(this or queue_name\)/);
    expect(out).toMatch(/gateway_url +http:\/\/gateway\.openfaas:8080/);
  });

  it('lists every name its source reader reads (the help tells the truth)', () => {
    sqsOptionsFromEnv({ queue_name: 'q' });
    const listed = [...CORE_SETTINGS, ...SQS_SETTINGS].map((s) => s.name);
    expect([...envNamesRead()].filter((n) => !listed.includes(n))).toEqual([]);
  });

  it('suggests the known name for a look-alike one', () => {
    const known = [...CORE_SETTINGS, ...SQS_SETTINGS].map((s) => s.name);
    expect(unknownSettings(known, { queue: 'x', wait_tiem: '1s' })).toEqual([
      { name: 'queue', suggestion: 'queue_url' },
      { name: 'wait_tiem', suggestion: 'wait_time' },
    ]);
  });

  it('the AWS SDK prints no Node-version warning into test output', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => void warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      new SQSClient({ region: 'eu-west-1', endpoint: 'http://127.0.0.1:1' }).destroy();
      await new Promise<void>((resolve) => setImmediate(resolve)); // process.emitWarning is emitted on next tick
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w.includes('AWS SDK'))).toEqual([]);
  });
});
