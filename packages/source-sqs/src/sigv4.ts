import { createHmac, hash } from 'node:crypto';

/** AWS credentials as the SDK's credential providers resolve them. */
export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
}

/** One request to sign: `headers` are sent as they are and all of them are signed (lower-case names). */
export interface Unsigned {
  readonly method: string;
  /** `host` or `host:port`, exactly as the Host header goes out. */
  readonly host: string;
  /** The request path, already URI-encoded (SQS's JSON protocol posts to `/`). */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** One-shot `crypto.hash` (Node 20.12+): a third less CPU than `createHash().update().digest()`. */
const sha256Hex = (data: string): string => hash('sha256', data, 'hex');
const hmac = (key: Buffer | string, data: string): Buffer =>
  createHmac('sha256', key).update(data, 'utf8').digest();

/** `20261202T052618Z` of a time. */
function amzDate(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2026-12-02T05:26:18.123Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

/** A header value as the canonical request has it: trimmed, inner runs of white space as one space. */
const canonicalValue = (v: string): string => v.trim().replace(/\s+/g, ' ');

/**
 * AWS Signature Version 4 for one service and region (the algorithm of the AWS General Reference, "Create a signed
 * AWS API request"), with the derived signing key kept for the day: two SHA-256 hashes and one HMAC a request.
 * `test/sigv4.test.ts` checks it byte for byte against the AWS SDK's own signer.
 */
export class SigV4 {
  private key: { readonly id: string; readonly key: Buffer } | undefined;
  /** The last second signed in, and its `x-amz-date`. */
  private second = -1;
  private date = '';

  constructor(
    private readonly region: string,
    private readonly service: string,
  ) {}

  /**
   * The headers to send: `headers` plus `host`, `x-amz-content-sha256`, `x-amz-date`, `x-amz-security-token` (with a
   * session token) and `authorization`.
   */
  sign(req: Unsigned, credentials: Credentials, nowMs: number): Record<string, string> {
    const second = Math.floor(nowMs / 1000);
    if (second !== this.second) {
      this.second = second;
      this.date = amzDate(nowMs);
    }
    const date = this.date;
    const day = date.slice(0, 8);
    const payloadHash = sha256Hex(req.body);
    const headers: Record<string, string> = {
      ...req.headers,
      host: req.host,
      'x-amz-content-sha256': payloadHash, // as the AWS SDK sends it: optional outside S3, signed when present
      'x-amz-date': date,
    };
    if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken;
    const names = Object.keys(headers).sort();
    let canonicalHeaders = '';
    for (const n of names) canonicalHeaders += `${n}:${canonicalValue(headers[n] as string)}\n`;
    const signedHeaders = names.join(';');
    const canonical = `${req.method}\n${req.path}\n\n${canonicalHeaders}\n${signedHeaders}\n${payloadHash}`;
    const scope = `${day}/${this.region}/${this.service}/aws4_request`;
    const toSign = `AWS4-HMAC-SHA256\n${date}\n${scope}\n${sha256Hex(canonical)}`;
    const signature = createHmac('sha256', this.signingKey(credentials.secretAccessKey, day))
      .update(toSign, 'utf8')
      .digest('hex');
    headers['authorization'] =
      `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return headers;
  }

  /** kSigning of the spec, derived again only when the day or the secret changes. */
  private signingKey(secret: string, day: string): Buffer {
    const id = `${day}\n${secret}`;
    if (this.key?.id !== id) {
      const k = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), this.region), this.service), 'aws4_request');
      this.key = { id, key: k };
    }
    return this.key.key;
  }
}
