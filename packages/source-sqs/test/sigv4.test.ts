import { SQSClient } from '@aws-sdk/client-sqs';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { type Credentials, SigV4 } from '../src/sigv4.js';

// The AWS SDK's own signer is the reference: the same request signed by both must carry the same Authorization.
const sha256 = new SQSClient({ region: 'us-east-1' }).config.sha256;

async function sdkSignature(
  region: string,
  credentials: Credentials,
  host: string,
  headers: Record<string, string>,
  body: string,
  at: Date,
): Promise<string> {
  const [hostname, port] = host.split(':');
  const { sessionToken, ...pair } = credentials;
  const signer = new SignatureV4({
    credentials: sessionToken === undefined ? pair : { ...pair, sessionToken },
    region,
    service: 'sqs',
    sha256,
  });
  const signed = await signer.sign(
    {
      method: 'POST',
      protocol: 'https:',
      hostname: hostname as string,
      ...(port !== undefined ? { port: Number(port) } : {}),
      path: '/',
      query: {},
      headers: { ...headers, host },
      body,
    },
    { signingDate: at },
  );
  return signed.headers['authorization'] as string;
}

const jsonHeaders = {
  'content-type': 'application/x-amz-json-1.0',
  'x-amz-target': 'AmazonSQS.ReceiveMessage',
  'x-amzn-query-mode': 'true',
};
const keys: Credentials = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};

describe('SigV4', () => {
  const cases: [string, string, Credentials, string, Record<string, string>, string][] = [
    ['plain', 'eu-west-1', keys, 'sqs.eu-west-1.amazonaws.com', jsonHeaders, '{"QueueUrl":"q"}'],
    [
      'session token, port in the host, non-ASCII body',
      'us-east-1',
      { accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 's3cr/t+=', sessionToken: 'tok/en+==' },
      '127.0.0.1:4566',
      jsonHeaders,
      JSON.stringify({ QueueUrl: 'http://127.0.0.1:4566/000000000000/é ü', MaxNumberOfMessages: 10 }),
    ],
    [
      'a header value with inner and outer white space',
      'ap-southeast-2',
      keys,
      'sqs.ap-southeast-2.amazonaws.com',
      { ...jsonHeaders, 'x-custom': '  a   b\tc ' },
      '',
    ],
  ];
  for (const [name, region, credentials, host, headers, body] of cases)
    it(`signs like the AWS SDK: ${name}`, async () => {
      const at = new Date('2026-12-02T05:26:18.123Z');
      const mine = new SigV4(region, 'sqs').sign(
        { method: 'POST', host, path: '/', headers, body },
        credentials,
        at.getTime(),
      );
      expect(mine['authorization']).toBe(await sdkSignature(region, credentials, host, headers, body, at));
      expect(mine['x-amz-date']).toBe('20261202T052618Z');
      expect(mine['x-amz-security-token']).toBe(credentials.sessionToken);
    });

  it('derives the signing key again when the day or the secret changes (one signer, many requests)', async () => {
    const signer = new SigV4('eu-west-1', 'sqs');
    const host = 'sqs.eu-west-1.amazonaws.com';
    const steps: [Date, Credentials][] = [
      [new Date('2026-12-02T23:59:59.900Z'), keys],
      [new Date('2026-12-03T00:00:00.100Z'), keys], // next day
      [new Date('2026-12-03T00:00:00.200Z'), { ...keys, secretAccessKey: 'rotated' }], // same second, new secret
      [new Date('2026-12-03T00:00:01.000Z'), keys],
    ];
    for (const [at, credentials] of steps) {
      const mine = signer.sign(
        { method: 'POST', host, path: '/', headers: jsonHeaders, body: '{}' },
        credentials,
        at.getTime(),
      );
      expect(mine['authorization']).toBe(
        await sdkSignature('eu-west-1', credentials, host, jsonHeaders, '{}', at),
      );
    }
  });
});
