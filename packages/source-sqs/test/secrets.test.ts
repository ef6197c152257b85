import { cleanups, GATEWAY_TEST_SECRET, refusedConnectorTexts } from '@connector/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { sqsOptionsFromEnv, sqsSource } from '../src/index.js';
import { startSqs } from './helpers.js';

// A known secret through every path the connector reads one (the AWS secret key and session token from files, the
// gateway's basic auth from secret_mount_path), with a queue that does not exist and a gateway that refuses: no log
// line at any level, no readiness text, no /readyz or /metrics body may carry it.
const SECRET = 'aws-Known-Secret-Key-0b7d';
const TOKEN = 'aws-Known-Session-Token-e41c';

const cleanup = cleanups();
afterEach(() => cleanup.run());

describe('secrets never reach a log line or a readiness text (SQS)', () => {
  it('secret_access_key_file and session_token_file, with a missing queue and a refusing gateway', async () => {
    const sqs = await startSqs();
    cleanup.add(() => sqs.server.stop());
    const sqsEnv = (path: (n: string) => string) => ({
      endpoint: sqs.server.address,
      region: 'us-east-1',
      queue_name: `missing-${process.pid}`,
      access_key_id: 'AKIDEXAMPLE',
      secret_access_key_file: path('key'),
      session_token_file: path('token'),
    });
    const { text } = await refusedConnectorTexts(
      {
        name: 'sqs-connector',
        files: { key: `${SECRET}\n`, token: `${TOKEN}\n` },
        env: (path) => {
          // the files are what the source reads
          expect(sqsOptionsFromEnv(sqsEnv(path)).clientConfig?.credentials).toEqual({
            accessKeyId: 'AKIDEXAMPLE',
            secretAccessKey: SECRET,
            sessionToken: TOKEN,
          });
          return sqsEnv(path);
        },
        source: (env) => sqsSource(sqsOptionsFromEnv(env)),
        refused: /source sqs failed to start/,
      },
      (undo) => cleanup.add(undo),
    );
    expect(text).toMatch(/"level":(10|20)/); // trace and debug lines were written too
    for (const secret of [SECRET, TOKEN, GATEWAY_TEST_SECRET]) expect(text).not.toContain(secret);
  });
});
