import { startConnectorFromEnv } from '@connector/core';
import { capturedLogger, connectorTexts, secretFiles, startGateway, waitFor } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { sqsOptionsFromEnv, sqsSource } from '../src/index.js';
import { startSqs } from './helpers.js';

// A known secret through every path the connector reads one (the AWS secret key and session token from files, the
// gateway's basic auth from secret_mount_path), with a queue that does not exist and a gateway that refuses: no log
// line at any level, no readiness text, no /readyz or /metrics body may carry it.
const SECRET = 'aws-Known-Secret-Key-0b7d';
const TOKEN = 'aws-Known-Session-Token-e41c';
const GATEWAY_SECRET = 'gw-Basic-Secret-7a2c';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('secrets never reach a log line or a readiness text (SQS)', () => {
  it('secret_access_key_file and session_token_file, with a missing queue and a refusing gateway', async () => {
    const sqs = await startSqs();
    cleanups.push(() => sqs.server.stop());
    const files = secretFiles({
      key: `${SECRET}\n`,
      token: `${TOKEN}\n`,
      'basic-auth-user': 'admin',
      'basic-auth-password': `${GATEWAY_SECRET}\n`,
    });
    cleanups.push(() => files.remove());
    const g = await startGateway({ credentials: { username: 'admin', password: 'another-one' } });
    cleanups.push(() => g.close());
    const logs = capturedLogger();
    const env = {
      gateway_url: g.url,
      basic_auth: 'true',
      secret_mount_path: files.dir,
      http_port: '0',
      http_host: '127.0.0.1',
      endpoint: sqs.server.address,
      region: 'us-east-1',
      queue_name: `missing-${process.pid}`,
      access_key_id: 'AKIDEXAMPLE',
      secret_access_key_file: files.path('key'),
      session_token_file: files.path('token'),
    };
    expect(sqsOptionsFromEnv(env).clientConfig?.credentials).toEqual({
      accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: SECRET,
      sessionToken: TOKEN,
    });
    const c = await startConnectorFromEnv({
      name: 'sqs-connector',
      env,
      source: (e) => sqsSource(sqsOptionsFromEnv(e)),
      signals: false,
      logger: logs,
    });
    cleanups.push(() => c.stop());
    await waitFor(() => /source sqs failed to start/.test(logs.text()) && /401/.test(logs.text()), {
      timeout: 15_000,
      message: () => logs.text().slice(-2000),
    });
    const text = await connectorTexts(c, logs);
    expect(text).toMatch(/"level":(10|20)/); // trace and debug lines were written too
    for (const secret of [SECRET, TOKEN, GATEWAY_SECRET]) expect(text).not.toContain(secret);
  });
});
