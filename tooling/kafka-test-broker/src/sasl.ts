import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/** SASL mechanisms the broker implements, as Kafka names them. */
export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;

/** A SASL mechanism name (Kafka's upper-case spelling). */
export type SaslMechanismName = (typeof SASL_MECHANISMS)[number];

/** A user the broker accepts; without `mechanism` it may log in with any of `SASL_MECHANISMS`. */
export interface SaslUser {
  /** Restrict this user to one mechanism (case-insensitive, e.g. 'scram-sha-256'). */
  mechanism?: string;
  /** User name (the SCRAM `n=` attribute, PLAIN's authentication identity). */
  username: string;
  /** Password (kept in memory as given for PLAIN, as SCRAM credentials otherwise). */
  password: string;
}

/** Why an exchange was refused; `message` is what the client is told (Kafka's wording, never the password). */
export class SaslAuthenticationError extends Error {
  /** Stable machine-readable code. */
  readonly code = 'ERR_SASL_AUTH';
}

/** One step of an exchange: bytes for the client, and whether the client is now authenticated. */
export interface SaslStep {
  /** The server's token (SaslAuthenticate `auth_bytes`). */
  response: Buffer;
  /** True once the client proved who it is. */
  done: boolean;
  /** The authenticated user name, once `done`. */
  username?: string;
}

/** The server side of one client's authentication with one mechanism. */
export interface SaslExchange {
  /** Handle the client's next token; throws `SaslAuthenticationError` when authentication fails. */
  step(token: Buffer): SaslStep;
}

/** SCRAM credentials as a Kafka broker stores them (RFC 5802 section 3): never the password itself. */
export interface ScramCredential {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

const HASHES = { 'SCRAM-SHA-256': 'sha256', 'SCRAM-SHA-512': 'sha512' } as const;
type ScramMechanism = keyof typeof HASHES;

/**
 * Derives SCRAM credentials for a password, used as UTF-8 without SASLprep like Kafka (salt random unless given;
 * kafkajs wants at least 4096 iterations).
 */
export function scramCredential(
  mechanism: ScramMechanism,
  password: string,
  iterations = 4096,
  salt: Buffer = randomBytes(16),
): ScramCredential {
  const hash = HASHES[mechanism];
  const salted = pbkdf2Sync(password, salt, iterations, hashLength(hash), hash);
  const clientKey = hmac(hash, salted, 'Client Key');
  return {
    salt,
    iterations,
    storedKey: createHash(hash).update(clientKey).digest(),
    serverKey: hmac(hash, salted, 'Server Key'),
  };
}

const hashLength = (hash: string) => (hash === 'sha256' ? 32 : 64);
const hmac = (hash: string, key: Buffer, data: string) => createHmac(hash, key).update(data).digest();
const sameBytes = (a: Buffer, b: Buffer) => a.length === b.length && timingSafeEqual(a, b);

/** Kafka's message for a refused SCRAM exchange (the same whatever was wrong, so nothing leaks). */
const scramFailure = (mechanism: string) =>
  new SaslAuthenticationError(
    `Authentication failed during authentication due to invalid credentials with SASL mechanism ${mechanism}`,
  );

/** Kafka's message for a refused PLAIN login. */
const plainFailure = () => new SaslAuthenticationError('Authentication failed: Invalid username or password');

/** RFC 5802 section 5.1: `=2C` is ',', `=3D` is '='; any other '=' makes the name invalid. */
function decodeSaslName(raw: string): string | null {
  if (/=(?!2C|3D)/.test(raw)) return null;
  return raw.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

/** `k=v,k=v` attributes of a SCRAM message; null when one is malformed. */
function attributes(message: string): Map<string, string> | null {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const m = /^([A-Za-z])=(.*)$/s.exec(part);
    if (m === null) return null;
    out.set(m[1]!, m[2]!);
  }
  return out;
}

/** Users and their credentials, per mechanism; starts exchanges. */
export class SaslAuthority {
  private readonly plain = new Map<string, string>();
  private readonly scram = new Map<ScramMechanism, Map<string, ScramCredential>>([
    ['SCRAM-SHA-256', new Map()],
    ['SCRAM-SHA-512', new Map()],
  ]);
  /** Mechanisms at least one user may use, in Kafka's order. */
  readonly mechanisms: SaslMechanismName[];

  constructor(
    users: readonly { mechanism: SaslMechanismName | undefined; username: string; password: string }[],
    private readonly options: { iterations?: number; nonce?: () => string } = {},
  ) {
    const enabled = new Set<SaslMechanismName>();
    for (const u of users) {
      for (const m of u.mechanism === undefined ? SASL_MECHANISMS : [u.mechanism]) {
        enabled.add(m);
        if (m === 'PLAIN') this.plain.set(u.username, u.password);
        else this.scram.get(m)?.set(u.username, scramCredential(m, u.password, options.iterations));
      }
    }
    this.mechanisms = SASL_MECHANISMS.filter((m) => enabled.has(m));
  }

  /** Starts an exchange with a mechanism the client asked for; undefined when it is not enabled. */
  start(mechanism: string): SaslExchange | undefined {
    if (!(this.mechanisms as string[]).includes(mechanism)) return undefined;
    if (mechanism === 'PLAIN') return this.plainExchange();
    const m = mechanism as ScramMechanism;
    return new ScramServer(m, (name) => this.scram.get(m)?.get(name), this.options.nonce);
  }

  private plainExchange(): SaslExchange {
    return {
      step: (token) => {
        // RFC 4616: [authzid] NUL authcid NUL passwd
        const parts = token.toString('utf8').split('\u0000');
        if (parts.length !== 3) throw plainFailure();
        const [authzid, username, password] = parts as [string, string, string];
        if (authzid !== '' && authzid !== username) {
          throw new SaslAuthenticationError(
            'Authentication failed: Client requested an authorization id that is different from username',
          );
        }
        const expected = this.plain.get(username);
        if (expected === undefined || !sameBytes(Buffer.from(password), Buffer.from(expected)))
          throw plainFailure();
        return { response: Buffer.alloc(0), done: true, username };
      },
    };
  }
}

/**
 * The server side of SCRAM (RFC 5802, RFC 7677 for SHA-256; Kafka's SCRAM-SHA-512 likewise): client-first →
 * server-first (nonce, salt, iterations) → client-final (proof checked) → server-final (server signature).
 * No channel binding (a client asking for it is refused), no extensions.
 */
export class ScramServer implements SaslExchange {
  private state: 'first' | 'final' | 'done' = 'first';
  private gs2Header = '';
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';
  private username = '';
  private credential: ScramCredential | undefined;
  private readonly hash: string;

  constructor(
    private readonly mechanism: ScramMechanism,
    private readonly lookup: (username: string) => ScramCredential | undefined,
    private readonly makeNonce: () => string = () => randomBytes(18).toString('base64'),
  ) {
    this.hash = HASHES[mechanism];
  }

  step(token: Buffer): SaslStep {
    const message = token.toString('utf8');
    if (this.state === 'first') return this.clientFirst(message);
    if (this.state === 'final') return this.clientFinal(message);
    throw new SaslAuthenticationError(`SCRAM exchange already complete (${this.mechanism})`);
  }

  private fail(): never {
    this.state = 'done';
    throw scramFailure(this.mechanism);
  }

  private clientFirst(message: string): SaslStep {
    // gs2-header = gs2-cbind-flag "," [ authzid ] ","; only "n" (no channel binding) or "y" (client could, we don't).
    const m = /^([ny]),(a=[^,]*)?,(.*)$/s.exec(message);
    if (m === null) return this.fail();
    this.gs2Header = message.slice(0, message.length - m[3]!.length);
    this.clientFirstBare = m[3]!;
    const attrs = attributes(this.clientFirstBare);
    const name = attrs?.get('n');
    const clientNonce = attrs?.get('r');
    if (attrs === null || attrs.has('m') || name === undefined || !clientNonce) return this.fail();
    const username = decodeSaslName(name);
    const authzid = m[2] === undefined ? '' : decodeSaslName(m[2].slice(2));
    if (username === null || (authzid !== '' && authzid !== username)) return this.fail();
    this.credential = this.lookup(username);
    if (this.credential === undefined) return this.fail();
    this.username = username;
    this.nonce = clientNonce + this.makeNonce();
    this.serverFirst = `r=${this.nonce},s=${this.credential.salt.toString('base64')},i=${this.credential.iterations}`;
    this.state = 'final';
    return { response: Buffer.from(this.serverFirst), done: false };
  }

  private clientFinal(message: string): SaslStep {
    const credential = this.credential;
    const proofAt = message.lastIndexOf(',p=');
    if (credential === undefined || proofAt < 0) return this.fail();
    const withoutProof = message.slice(0, proofAt);
    const attrs = attributes(withoutProof);
    const proof = Buffer.from(message.slice(proofAt + 3), 'base64');
    if (
      attrs === null ||
      attrs.get('c') !== Buffer.from(this.gs2Header).toString('base64') ||
      attrs.get('r') !== this.nonce
    )
      return this.fail();
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientSignature = createHmac(this.hash, credential.storedKey).update(authMessage).digest();
    if (proof.length !== clientSignature.length) return this.fail();
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i]! ^ clientSignature[i]!;
    if (!sameBytes(createHash(this.hash).update(clientKey).digest(), credential.storedKey))
      return this.fail();
    const serverSignature = createHmac(this.hash, credential.serverKey).update(authMessage).digest('base64');
    this.state = 'done';
    return { response: Buffer.from(`v=${serverSignature}`), done: true, username: this.username };
  }
}
