import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SaslAuthenticationError, SaslAuthority, ScramServer, scramCredential } from './sasl.js';

// RFC 7677 section 3: user "user", password "pencil".
const RFC7677 = {
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'),
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

const rfcServer = () => {
  const credential = scramCredential('SCRAM-SHA-256', 'pencil', 4096, RFC7677.salt);
  return new ScramServer(
    'SCRAM-SHA-256',
    (name) => (name === 'user' ? credential : undefined),
    () => RFC7677.serverNonce,
  );
};

/** A SCRAM client (RFC 5802 section 3), independent of the server code, for the cases kafkajs never sends. */
function clientFinal(
  hash: 'sha256' | 'sha512',
  password: string,
  clientFirstBare: string,
  serverFirst: string,
) {
  const attrs = new Map(serverFirst.split(',').map((p) => [p[0], p.slice(2)] as const));
  const salted = pbkdf2Sync(
    password,
    Buffer.from(attrs.get('s')!, 'base64'),
    Number(attrs.get('i')),
    hash === 'sha256' ? 32 : 64,
    hash,
  );
  const clientKey = createHmac(hash, salted).update('Client Key').digest();
  const storedKey = createHash(hash).update(clientKey).digest();
  const withoutProof = `c=biws,r=${attrs.get('r')}`;
  const sig = createHmac(hash, storedKey)
    .update(`${clientFirstBare},${serverFirst},${withoutProof}`)
    .digest();
  const proof = Buffer.from(clientKey.map((b, i) => b ^ sig[i]!)).toString('base64');
  return `${withoutProof},p=${proof}`;
}

describe('SCRAM server', () => {
  it('reproduces the RFC 7677 SCRAM-SHA-256 exchange byte for byte', () => {
    const server = rfcServer();
    const first = server.step(Buffer.from(RFC7677.clientFirst));
    expect(first.response.toString()).toBe(RFC7677.serverFirst);
    expect(first.done).toBe(false);
    const final = server.step(Buffer.from(RFC7677.clientFinal));
    expect(final.response.toString()).toBe(RFC7677.serverFinal);
    expect(final).toMatchObject({ done: true, username: 'user' });
  });

  it('refuses a wrong proof with Kafka’s message naming the mechanism', () => {
    const server = rfcServer();
    server.step(Buffer.from(RFC7677.clientFirst));
    const forged = RFC7677.clientFinal.replace(/p=.*/, `p=${Buffer.alloc(32, 1).toString('base64')}`);
    expect(() => server.step(Buffer.from(forged))).toThrow(
      new SaslAuthenticationError(
        'Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256',
      ),
    );
  });

  it.each([
    ['an unknown user', 'n,,n=nobody,r=abc', null],
    ['channel binding required by the client', 'p=tls-unique,,n=user,r=abc', null],
    ['a mandatory extension', 'n,,m=ext,n=user,r=abc', null],
    ['a malformed user name escape', 'n,,n=us=er,r=abc', null],
    ['an authorization id for another user', 'n,a=admin,n=user,r=abc', null],
    ['a missing nonce', 'n,,n=user', null],
    [
      'a changed nonce in the final message',
      RFC7677.clientFirst,
      RFC7677.clientFinal.replace('k0,p', 'k1,p'),
    ],
    [
      'a changed channel binding in the final message',
      RFC7677.clientFirst,
      RFC7677.clientFinal.replace('c=biws', 'c=eSws'),
    ],
    [
      'a final message without proof',
      RFC7677.clientFirst,
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
    ],
  ])('refuses %s', (_what, first, final) => {
    const server = rfcServer();
    const run = () => {
      server.step(Buffer.from(first));
      if (final !== null) server.step(Buffer.from(final));
    };
    expect(run).toThrow(SaslAuthenticationError);
  });

  it('decodes =2C and =3D in user names and works with SHA-512', () => {
    const authority = new SaslAuthority([{ mechanism: 'SCRAM-SHA-512', username: 'a,b=c', password: 'pw' }]);
    expect(authority.mechanisms).toEqual(['SCRAM-SHA-512']);
    expect(authority.start('SCRAM-SHA-256')).toBeUndefined();
    const server = authority.start('SCRAM-SHA-512')!;
    const bare = 'n=a=2Cb=3Dc,r=nonce1';
    const serverFirst = server.step(Buffer.from(`n,,${bare}`)).response.toString();
    expect(serverFirst).toMatch(/^r=nonce1[^,]+,s=[^,]+,i=4096$/);
    const final = server.step(Buffer.from(clientFinal('sha512', 'pw', bare, serverFirst)));
    expect(final).toMatchObject({ done: true, username: 'a,b=c' });
  });
});

describe('PLAIN', () => {
  const authority = new SaslAuthority([{ mechanism: undefined, username: 'alice', password: 's3cret' }]);
  const login = (token: string) => authority.start('PLAIN')!.step(Buffer.from(token));

  it('accepts the right password, with or without an authorization id equal to the user', () => {
    expect(login('\u0000alice\u0000s3cret')).toMatchObject({ done: true, username: 'alice' });
    expect(login('alice\u0000alice\u0000s3cret')).toMatchObject({ done: true, username: 'alice' });
  });

  it.each([
    ['a wrong password', '\u0000alice\u0000wrong'],
    ['an unknown user', '\u0000bob\u0000s3cret'],
    ['another authorization id', 'bob\u0000alice\u0000s3cret'],
    ['a malformed token', 'alice:s3cret'],
  ])('refuses %s without echoing the password', (_what, token) => {
    let message = '';
    try {
      login(token);
    } catch (err) {
      expect(err).toBeInstanceOf(SaslAuthenticationError);
      message = (err as Error).message;
    }
    expect(message).toMatch(/^Authentication failed/);
    expect(message).not.toMatch(/s3cret|wrong/);
  });

  it('enables every mechanism for a user without one', () => {
    expect(authority.mechanisms).toEqual(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']);
  });
});
