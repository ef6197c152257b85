import { SQSClient } from '@aws-sdk/client-sqs';
import { sqsOptionsFromEnv } from '@connector/source-sqs';
import { testConnectorSettings } from '@connector/testing/conformance';
import { describe, expect, it } from 'vitest';
import { cli, SQS_SETTINGS } from '../src/index.js';

testConnectorSettings({
  app: 'sqs-connector',
  cli,
  settings: SQS_SETTINGS,
  read: () => void sqsOptionsFromEnv({ queue_name: 'q' }),
  help: [/queue_url +\(this or queue_name\)/],
  lookalikes: { queue: 'queue_url', wait_tiem: 'wait_time' },
});

describe('sqs-connector with the AWS SDK', () => {
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
