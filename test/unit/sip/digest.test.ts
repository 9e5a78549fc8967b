// SIP digest authentication (RFC 3261 §22, RFC 8760, RFC 7616): known answers,
// round trips through a tiny independent client, replay, staleness, user
// enumeration, parsing, bounded memory, and a fuzz loop. Clock injected: no sleeps.
import t from 'tap';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  DigestAuthenticator,
  computeDigestResponse,
  computeHa1,
  parseCredentials,
  type DigestAlgorithm,
  type DigestOptions,
  type DigestVerdict,
} from '../../../src/sip/registrar/digest.js';
import type { CredentialSource, UserCredentials } from '../../../src/sip/registrar/credentials.js';

const REALM = 'example.com';
const SECRET = Buffer.from('0123456789abcdef0123456789abcdef');
const RURI = 'sip:example.com';
const T0 = 1_700_000_000_000;

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

class FakeCredentials implements CredentialSource {
  readonly lookups: string[] = [];
  private readonly users = new Map<string, UserCredentials>();
  add(username: string, password: string, realm = REALM): this {
    this.users.set(`${username}\0${realm}`, {
      username, realm,
      ha1Md5: computeHa1('MD5', username, realm, password),
      ha1Sha256: computeHa1('SHA-256', username, realm, password),
    });
    return this;
  }
  async lookup(username: string, realm: string): Promise<UserCredentials | undefined> {
    this.lookups.push(username);
    return this.users.get(`${username}\0${realm}`);
  }
}

function setup(extra: Partial<DigestOptions> = {}) {
  const clock = { now: T0 };
  const auth = new DigestAuthenticator({ realm: REALM, secret: SECRET, now: () => clock.now, ...extra });
  const creds = new FakeCredentials().add('alice', 'wonderland').add('bob', 'builder');
  return { clock, auth, creds };
}

// A test-only UAC, written independently of the module under test: reads a
// challenge, computes the response with node:crypto, and builds the header.
interface Challenge { realm: string; nonce: string; algorithm: string; qop: string; stale: boolean }
function parseChallenge(value: string): Challenge {
  const get = (name: string): string | undefined => {
    const m = new RegExp(`[ ,]${name}=(?:"((?:[^"\\\\]|\\\\.)*)"|([^, ]+))`).exec(value);
    return m === null ? undefined : (m[1] ?? m[2] ?? '').replace(/\\(.)/g, '$1');
  };
  return {
    realm: get('realm') ?? '', nonce: get('nonce') ?? '', algorithm: get('algorithm') ?? 'MD5',
    qop: get('qop') ?? '', stale: get('stale') === 'true',
  };
}
interface ClientOpts {
  username?: string; password?: string; method?: string; uri?: string; nc?: number; cnonce?: string;
  algorithm?: DigestAlgorithm; realm?: string; nonce?: string; noQop?: boolean; omitAlgorithm?: boolean;
  qop?: string; algorithmParam?: string; extra?: string;
}
function h(alg: string, s: string): string {
  return createHash(alg === 'SHA-256' ? 'sha256' : 'md5').update(s, 'utf8').digest('hex');
}
function q(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
function authorize(challenges: string[], o: ClientOpts = {}): string {
  const alg = o.algorithm ?? 'SHA-256';
  const ch = challenges.map(parseChallenge).find((c) => c.algorithm === alg);
  if (ch === undefined) throw new Error(`no ${alg} challenge`);
  const username = o.username ?? 'alice';
  const realm = o.realm ?? ch.realm;
  const nonce = o.nonce ?? ch.nonce;
  const method = o.method ?? 'REGISTER';
  const uri = o.uri ?? RURI;
  const nc = (o.nc ?? 1).toString(16).padStart(8, '0');
  const cnonce = o.cnonce ?? 'c0ffee';
  const qop = o.qop ?? 'auth';
  const ha1 = h(alg, `${username}:${realm}:${o.password ?? 'wonderland'}`);
  const ha2 = h(alg, `${method}:${uri}`);
  const response = o.noQop === true
    ? h(alg, `${ha1}:${nonce}:${ha2}`)
    : h(alg, `${ha1}:${nonce}:${nc}:${cnonce}:${qop}:${ha2}`);
  const parts = [`username=${q(username)}`, `realm=${q(realm)}`, `nonce=${q(nonce)}`, `uri=${q(uri)}`, `response="${response}"`];
  if (o.omitAlgorithm !== true) parts.push(`algorithm=${o.algorithmParam ?? alg}`);
  if (o.noQop !== true) parts.push(`qop=${qop}`, `nc=${nc}`, `cnonce=${q(cnonce)}`);
  if (o.extra !== undefined) parts.push(o.extra);
  return `Digest ${parts.join(', ')}`;
}

function req(authorization: string[], method = 'REGISTER', requestUri = RURI) {
  return { method, requestUri, authorization };
}

/** Replace each nonce with a placeholder so two challenges can be compared structurally. */
function shape(challenges: string[]): string[] {
  return challenges.map((c) => c.replace(/nonce="[^"]*"/, 'nonce="*"'));
}

// ---------------------------------------------------------------------------
// Known answers
// ---------------------------------------------------------------------------

t.test('known-answer vectors (RFC 7616 §3.9.1, RFC 2617 §3.5, RFC 2069 §2.4)', async (t) => {
  const rfc7616 = {
    username: 'Mufasa', password: 'Circle of Life', realm: 'http-auth@example.org', method: 'GET',
    uri: '/dir/index.html', nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
    cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ', nc: '00000001', qop: 'auth',
  };
  const table: Array<{ name: string; algorithm: DigestAlgorithm; v: typeof rfc7616 | (Omit<typeof rfc7616, 'qop' | 'nc' | 'cnonce'> & { qop?: undefined; nc?: undefined; cnonce?: undefined }); expected: string }> = [
    { name: 'RFC 7616 MD5', algorithm: 'MD5', v: rfc7616, expected: '8ca523f5e9506fed4657c9700eebdbec' },
    { name: 'RFC 7616 SHA-256', algorithm: 'SHA-256', v: rfc7616, expected: '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1' },
    {
      name: 'RFC 2617 MD5 qop=auth', algorithm: 'MD5', expected: '6629fae49393a05397450978507c4ef1',
      v: { ...rfc7616, password: 'Circle Of Life', realm: 'testrealm@host.com', nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093', cnonce: '0a4f113b' },
    },
    {
      name: 'RFC 2069 MD5 without qop', algorithm: 'MD5', expected: '1949323746fe6a43ef61f9606e7febea',
      v: { username: 'Mufasa', password: 'CircleOfLife', realm: 'testrealm@host.com', method: 'GET', uri: '/dir/index.html', nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093' },
    },
  ];
  for (const { name, algorithm, v, expected } of table) {
    const ha1 = computeHa1(algorithm, v.username, v.realm, v.password);
    const got = computeDigestResponse({
      algorithm, ha1, nonce: v.nonce, method: v.method, uri: v.uri,
      ...(v.qop !== undefined ? { qop: v.qop, nc: v.nc, cnonce: v.cnonce } : {}),
    });
    t.equal(got, expected, name);
  }
});

// ---------------------------------------------------------------------------
// Challenges
// ---------------------------------------------------------------------------

t.test('challenge: one value per algorithm, SHA-256 first, qop="auth", shared fresh nonce', async (t) => {
  const { auth } = setup();
  const c = auth.challenge();
  t.equal(c.length, 2);
  t.match(c[0], /^Digest realm="example\.com", nonce="[A-Za-z0-9_-]{43}", algorithm=SHA-256, qop="auth"$/);
  t.match(c[1], /^Digest realm="example\.com", nonce="[A-Za-z0-9_-]{43}", algorithm=MD5, qop="auth"$/);
  t.equal(parseChallenge(c[0] ?? '').nonce, parseChallenge(c[1] ?? '').nonce, 'nonce shared by both values');
  t.notOk(c.some((v) => v.includes('auth-int')), 'auth-int never offered');
  const stale = auth.challenge({ stale: true });
  t.ok(stale.every((v) => v.endsWith(', stale=true')), 'stale=true when asked');
  const nonces = new Set(Array.from({ length: 1000 }, () => parseChallenge(auth.challenge()[0] ?? '').nonce));
  t.equal(nonces.size, 1000, 'nonces are unique');
});

t.test('challenge: configured algorithms and realm quoting', async (t) => {
  const clock = () => T0;
  const md5only = new DigestAuthenticator({ realm: 'a"b\\c', secret: SECRET, now: clock, algorithms: ['MD5'] });
  const c = md5only.challenge();
  t.equal(c.length, 1);
  t.match(c[0], /^Digest realm="a\\"b\\\\c", nonce="[^"]+", algorithm=MD5, qop="auth"$/);
});

t.test('constructor rejects bad configuration', async (t) => {
  const base: DigestOptions = { realm: REALM, secret: SECRET, now: () => T0 };
  const bad: Array<[string, Partial<DigestOptions>]> = [
    ['empty realm', { realm: '' }],
    ['realm with CRLF', { realm: 'a\r\nb' }],
    ['short secret', { secret: Buffer.alloc(8) }],
    ['zero ttl', { nonceTtlMs: 0 }],
    ['fractional ttl', { nonceTtlMs: 1.5 }],
    ['zero cap', { maxTrackedNonces: 0 }],
    ['no algorithms', { algorithms: [] }],
    ['duplicate algorithms', { algorithms: ['MD5', 'MD5'] }],
    ['unknown algorithm', { algorithms: ['SHA-1' as DigestAlgorithm] }],
  ];
  for (const [name, o] of bad) t.throws(() => new DigestAuthenticator({ ...base, ...o }), name);
});

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

t.test('round trip: challenge → client → verify ok, for each algorithm', async (t) => {
  for (const algorithm of ['SHA-256', 'MD5'] as const) {
    const { auth, creds } = setup();
    const v = await auth.verify(req([authorize(auth.challenge(), { algorithm })]), creds);
    t.same(v, { kind: 'ok', username: 'alice', algorithm, index: 0 }, algorithm);
  }
  const { auth, creds } = setup();
  const v = await auth.verify(
    req([authorize(auth.challenge(), { method: 'INVITE', uri: 'sip:bob@example.com;transport=tcp' })], 'INVITE', 'sip:bob@example.com;transport=tcp'),
    creds,
  );
  t.equal(v.kind, 'ok', 'INVITE through the proxy (Proxy-Authorization) works the same way');
});

t.test('algorithm handling', async (t) => {
  const table: Array<{ name: string; opts?: Partial<DigestOptions>; client: ClientOpts; expect: Partial<DigestVerdict> }> = [
    { name: 'algorithm absent means MD5 (RFC 2617)', client: { algorithm: 'MD5', omitAlgorithm: true }, expect: { kind: 'ok', algorithm: 'MD5' } },
    { name: 'algorithm token is case-insensitive', client: { algorithm: 'SHA-256', algorithmParam: 'sha-256' }, expect: { kind: 'ok', algorithm: 'SHA-256' } },
    { name: 'MD5-sess is not supported', client: { algorithm: 'MD5', algorithmParam: 'MD5-sess' }, expect: { kind: 'failed', internalReason: 'unsupported-algorithm' } },
    { name: 'SHA-512-256 is not supported', client: { algorithm: 'SHA-256', algorithmParam: 'SHA-512-256' }, expect: { kind: 'failed', internalReason: 'unsupported-algorithm' } },
    { name: 'MD5 refused when only SHA-256 is configured', opts: { algorithms: ['SHA-256'] }, client: { algorithm: 'SHA-256', algorithmParam: 'MD5' }, expect: { kind: 'failed', internalReason: 'unsupported-algorithm' } },
    { name: 'absent algorithm (MD5) refused when only SHA-256 is configured', opts: { algorithms: ['SHA-256'] }, client: { algorithm: 'SHA-256', omitAlgorithm: true }, expect: { kind: 'failed', internalReason: 'unsupported-algorithm' } },
  ];
  for (const { name, opts, client, expect } of table) {
    const { auth, creds } = setup(opts);
    t.match(await auth.verify(req([authorize(auth.challenge(), client)]), creds), expect, name);
  }
});

t.test('qop handling', async (t) => {
  const table: Array<{ name: string; opts?: Partial<DigestOptions>; client: ClientOpts; expect: Partial<DigestVerdict> }> = [
    { name: 'auth-int is not supported (we only offer auth)', client: { qop: 'auth-int' }, expect: { kind: 'failed', internalReason: 'unsupported-qop' } },
    { name: 'unknown qop token', client: { qop: 'auth-conf' }, expect: { kind: 'failed', internalReason: 'unsupported-qop' } },
    { name: 'RFC 2069 response (no qop) accepted for MD5', client: { algorithm: 'MD5', noQop: true }, expect: { kind: 'ok', algorithm: 'MD5' } },
    { name: 'no qop refused for SHA-256 (RFC 7616 makes qop mandatory)', client: { algorithm: 'SHA-256', noQop: true }, expect: { kind: 'failed', internalReason: 'qop-required' } },
    { name: 'no qop refused when allowRfc2069 is false', opts: { allowRfc2069: false }, client: { algorithm: 'MD5', noQop: true }, expect: { kind: 'failed', internalReason: 'qop-required' } },
    { name: 'userhash=true is not supported', client: { extra: 'userhash=true' }, expect: { kind: 'failed', internalReason: 'userhash-unsupported' } },
    { name: 'userhash=false is fine', client: { extra: 'userhash=false' }, expect: { kind: 'ok' } },
    { name: 'unknown extra parameters (opaque) are ignored', client: { extra: 'opaque="xyz", foo=bar' }, expect: { kind: 'ok' } },
  ];
  for (const { name, opts, client, expect } of table) {
    const { auth, creds } = setup(opts);
    t.match(await auth.verify(req([authorize(auth.challenge(), client)]), creds), expect, name);
  }
});

t.test('wrong password and unknown user are indistinguishable', async (t) => {
  const { auth, creds } = setup();
  const wrong = await auth.verify(req([authorize(auth.challenge(), { password: 'nope' })]), creds);
  const wrongChallenge = auth.challenge();
  const unknown = await auth.verify(req([authorize(auth.challenge(), { username: 'mallory', password: 'nope' })]), creds);
  const unknownChallenge = auth.challenge();
  t.match(wrong, { kind: 'failed', internalReason: 'bad-response' });
  t.match(unknown, { kind: 'failed', internalReason: 'unknown-user' });
  // What reaches the peer: the verdict kind and the challenge that follows.
  t.equal(wrong.kind, unknown.kind, 'same verdict kind');
  t.same(Object.keys(wrong).sort(), Object.keys(unknown).sort(), 'same verdict shape');
  t.same(shape(wrongChallenge), shape(unknownChallenge), 'same challenge');
  t.same(creds.lookups, ['alice', 'mallory'], 'the store is asked in both cases (same work)');

  // Also when the nonce is stale: unknown users never get "stale" (that would confirm a password).
  const staleNonce = auth.challenge();
  const later = new DigestAuthenticator({ realm: REALM, secret: SECRET, now: () => T0 + 301_000 });
  const u = await later.verify(req([authorize(staleNonce, { username: 'mallory' })]), creds);
  const w = await later.verify(req([authorize(staleNonce, { password: 'nope' })]), creds);
  t.equal(u.kind, 'failed');
  t.equal(w.kind, 'failed');
});

t.test('an unknown user cannot pass by matching the dummy HA1, even if someone guessed its scheme', async (t) => {
  const { auth } = setup();
  // A store that returns an HA1 of the wrong length is treated as unknown, not trusted.
  const broken: CredentialSource = { lookup: async (username, realm) => ({ username, realm, ha1Md5: '', ha1Sha256: '' }) };
  const v = await auth.verify(req([authorize(auth.challenge())]), broken);
  t.match(v, { kind: 'failed', internalReason: 'unknown-user' });
});

t.test('nonce-count: replay rejected, increasing nc accepted, failures do not advance nc', async (t) => {
  const { auth, creds } = setup();
  const c = auth.challenge();
  const send = (o: ClientOpts) => auth.verify(req([authorize(c, o)]), creds);
  t.match(await send({ nc: 1 }), { kind: 'ok' }, 'nc=1');
  t.match(await send({ nc: 1 }), { kind: 'failed', internalReason: 'replay' }, 'nc=1 again is a replay');
  t.match(await send({ nc: 2 }), { kind: 'ok' }, 'nc=2');
  t.match(await send({ nc: 0xffffffff, password: 'forged' }), { kind: 'failed', internalReason: 'bad-response' }, 'forged high nc');
  t.match(await send({ nc: 3 }), { kind: 'ok' }, 'forged request did not advance the count');
  t.match(await send({ nc: 7 }), { kind: 'ok' }, 'gaps are fine');
  t.match(await send({ nc: 5 }), { kind: 'failed', internalReason: 'replay' }, 'lower than the highest accepted');
  t.match(await send({ nc: 8, cnonce: 'other' }), { kind: 'ok' }, 'new cnonce, same nonce');
  const fresh = auth.challenge();
  t.match(await auth.verify(req([authorize(fresh, { nc: 0 })]), creds), { kind: 'failed', internalReason: 'replay' }, 'nc=0 is never valid');
});

t.test('RFC 2069 (no qop) nonces are single-use: reuse gets stale, not ok', async (t) => {
  const { auth, creds } = setup();
  const c = auth.challenge();
  t.match(await auth.verify(req([authorize(c, { algorithm: 'MD5', noQop: true })]), creds), { kind: 'ok' });
  t.match(await auth.verify(req([authorize(c, { algorithm: 'MD5', noQop: true })]), creds), { kind: 'stale', internalReason: 'reused-nonce' });
  t.match(await auth.verify(req([authorize(c, { algorithm: 'MD5', nc: 9 })]), creds), { kind: 'failed', internalReason: 'replay' }, 'nor can qop reuse it');
});

t.test('stale nonces (RFC 7616 §3.3)', async (t) => {
  const { auth, creds, clock } = setup({ nonceTtlMs: 60_000 });
  const c = auth.challenge();
  clock.now += 60_000;
  t.match(await auth.verify(req([authorize(c)]), creds), { kind: 'ok' }, 'exactly at the TTL: still valid');
  clock.now += 1;
  t.match(await auth.verify(req([authorize(c, { nc: 2 })]), creds), { kind: 'stale', username: 'alice', internalReason: 'expired-nonce' }, 'right password → stale');
  t.match(await auth.verify(req([authorize(c, { nc: 3, password: 'nope' })]), creds), { kind: 'failed', internalReason: 'bad-response' }, 'wrong password → failed, not stale');
  t.match(await auth.verify(req([authorize(c, { nc: 1 })]), creds), { kind: 'stale' }, 'a replay of an expired nonce is merely stale (no access)');
  const again = auth.challenge({ stale: true });
  t.match(await auth.verify(req([authorize(again)]), creds), { kind: 'ok' }, 'retry with the stale=true challenge works');
});

t.test('nonce integrity: tampered, foreign, other realm, future', async (t) => {
  const { auth, creds, clock } = setup();
  const c = auth.challenge();
  const nonce = parseChallenge(c[0] ?? '').nonce;
  const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  for (const i of [0, 10, 25, 42]) {
    t.match(await auth.verify(req([authorize(c, { nonce: flip(nonce, i) })]), creds), { kind: 'failed', internalReason: 'bad-nonce' }, `flipped char ${i}`);
  }
  for (const bad of ['', 'abc', `${nonce}A`, `${nonce.slice(0, 42)}=`, nonce.replace(/^./, '+'), 'x'.repeat(43)]) {
    t.match(await auth.verify(req([authorize(c, { nonce: bad })]), creds), { kind: 'failed', internalReason: 'bad-nonce' }, `nonce ${JSON.stringify(bad)}`);
  }
  const otherSecret = new DigestAuthenticator({ realm: REALM, secret: Buffer.alloc(32, 7), now: () => clock.now });
  t.match(await auth.verify(req([authorize(otherSecret.challenge())]), creds), { kind: 'failed', internalReason: 'bad-nonce' }, 'minted with another secret');
  const otherRealm = new DigestAuthenticator({ realm: 'other.example', secret: SECRET, now: () => clock.now });
  const foreign = parseChallenge(otherRealm.challenge()[0] ?? '').nonce;
  t.match(await auth.verify(req([authorize(c, { nonce: foreign })]), creds), { kind: 'failed', internalReason: 'bad-nonce' }, 'minted for another realm with the same secret');
  const ahead = new DigestAuthenticator({ realm: REALM, secret: SECRET, now: () => clock.now + 60_000 });
  t.match(await auth.verify(req([authorize(ahead.challenge())]), creds), { kind: 'failed', internalReason: 'future-nonce' }, 'from the future');
  const slightlyAhead = new DigestAuthenticator({ realm: REALM, secret: SECRET, now: () => clock.now + 2_000 });
  t.match(await auth.verify(req([authorize(slightlyAhead.challenge())]), creds), { kind: 'ok' }, 'within clock skew (another node)');
});

t.test('uri must match the Request-URI', async (t) => {
  const { auth, creds } = setup();
  const c = auth.challenge();
  const v = await auth.verify(req([authorize(c, { uri: 'sip:evil.example' })], 'REGISTER', RURI), creds);
  t.match(v, { kind: 'malformed', reason: /uri/ });
  const v2 = await auth.verify(req([authorize(c, { uri: 'SIP:example.com' })], 'REGISTER', RURI), creds);
  t.equal(v2.kind, 'malformed', 'compared as given');
  t.same(creds.lookups, [], 'no store lookup for malformed requests');
});

t.test('realm selection among several credentials', async (t) => {
  const { auth, creds } = setup();
  const c = auth.challenge();
  const ours = authorize(c);
  const theirs = authorize(c, { realm: 'carrier.example' });
  t.same(await auth.verify(req([]), creds), { kind: 'missing' }, 'no credentials');
  t.same(await auth.verify(req([theirs]), creds), { kind: 'missing' }, 'only another realm');
  t.same(await auth.verify(req(['Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==']), creds), { kind: 'missing' }, 'Basic is never accepted');
  t.match(await auth.verify(req([theirs, ours]), creds), { kind: 'ok', index: 1 }, 'ours picked among several');
  t.match(await auth.verify(req([ours, authorize(c, { nc: 2 })]), creds), { kind: 'malformed', reason: /more than one/ }, 'two for our realm');
  t.match(await auth.verify(req([theirs, 'Digest username="x']), creds), { kind: 'malformed', reason: /unterminated/ }, 'an unparseable value may have been ours');
  t.match(await auth.verify(req(Array.from({ length: 17 }, () => theirs)), creds), { kind: 'malformed' }, 'too many values');
});

t.test('usernames: quoted-pair escapes and UTF-8', async (t) => {
  for (const username of ['a"b\\c', '张三', 'josé', 'user@example.com', '']) {
    const { auth } = setup();
    const creds = new FakeCredentials().add(username, 'pw');
    const v = await auth.verify(req([authorize(auth.challenge(), { username, password: 'pw' })]), creds);
    t.same(v, { kind: 'ok', username, algorithm: 'SHA-256', index: 0 }, JSON.stringify(username));
    t.same(creds.lookups, [username], 'looked up unescaped');
  }
});

t.test('parser: LWS, case, token or quoted values', async (t) => {
  const { auth, creds } = setup();
  const c = auth.challenge();
  const nonce = parseChallenge(c[0] ?? '').nonce;
  const response = computeDigestResponse({
    algorithm: 'MD5', ha1: computeHa1('MD5', 'alice', REALM, 'wonderland'), nonce, method: 'REGISTER', uri: RURI,
    qop: 'auth', nc: '0000000A', cnonce: 'xyz',
  });
  const header = `  dIgEsT   USERNAME = "alice" ,Realm="${REALM}"\r\n\t, nonce="${nonce}",uri = "${RURI}" ,  ` +
    `response="${response.toUpperCase()}", ALGORITHM="MD5", qop="auth", nc=0000000A, cnonce=xyz  `;
  t.match(await auth.verify(req([header]), creds), { kind: 'ok', username: 'alice', algorithm: 'MD5' });

  const p = parseCredentials('Digest a=b, c="d\\"e", F="\\\\"');
  t.ok(p.ok);
  if (p.ok) t.same([...p.params], [['a', 'b'], ['c', 'd"e'], ['f', '\\']]);
});

t.test('malformed credentials yield a reason, never an exception', async (t) => {
  const { auth, creds } = setup();
  const n = parseChallenge(auth.challenge()[0] ?? '').nonce;
  const good = `username="alice", realm="${REALM}", nonce="${n}", uri="${RURI}", response="00", qop=auth, nc=00000001, cnonce="x"`;
  const table: Array<[string, string, RegExp]> = [
    ['empty', '', /empty/],
    ['blank', '   ', /empty/],
    ['scheme only', 'Digest', /without parameters/],
    ['scheme and space', 'Digest   ', /without parameters/],
    ['no scheme', good, /scheme/],
    ['no scheme, one param', 'realm="example.com"', /scheme/],
    ['no space after scheme', 'Digest"x"', /whitespace/],
    ['unterminated quote', `Digest ${good}, opaque="abc`, /unterminated/],
    ['escape at end', 'Digest username="abc\\', /unterminated/],
    ['duplicate param', `Digest ${good}, nonce="x"`, /duplicate parameter nonce/],
    ['duplicate param, other case', `Digest ${good}, Realm="x"`, /duplicate parameter realm/],
    ['empty element', `Digest username="a",, ${good.replace('username="alice", ', '')}`, /parameter name/],
    ['trailing comma', `Digest ${good},`, /trailing comma/],
    ['missing comma', `Digest ${good} opaque="x"`, /comma/],
    ['param without value', `Digest ${good}, stale`, /no value/],
    ['param with empty token value', `Digest ${good}, stale=`, /empty/],
    ['bare CR', `Digest ${good},\r opaque="x"`, /CR or LF/],
    ['bare LF in quotes', `Digest username="a\nb", ${good.replace('username="alice", ', '')}`, /CR or LF/],
    ['NUL in quotes', `Digest ${good}, opaque="a\u0000b"`, /control/],
    ['too long', `Digest ${good}, opaque="${'x'.repeat(9000)}"`, /too long/],
    ['too many params', `Digest ${good}, ${Array.from({ length: 40 }, (_, i) => `p${i}=1`).join(', ')}`, /too many/],
    ['missing username', `Digest ${good.replace('username="alice", ', '')}`, /username/],
    ['username* only', `Digest ${good.replace('username="alice"', "username*=UTF-8''alice")}`, /username\*/],
    ['missing nonce', `Digest ${good.replace(`nonce="${n}", `, '')}`, /nonce/],
    ['missing uri', `Digest ${good.replace(`uri="${RURI}", `, '')}`, /uri/],
    ['missing response', `Digest ${good.replace('response="00", ', '')}`, /response/],
    ['qop without cnonce', `Digest ${good.replace(', cnonce="x"', '')}`, /cnonce/],
    ['qop without nc', `Digest ${good.replace(', nc=00000001', '')}`, /nc/],
    ['nc not 8 hex digits', `Digest ${good.replace('nc=00000001', 'nc=1')}`, /nc/],
    ['nc with non-hex', `Digest ${good.replace('nc=00000001', 'nc=0000000g')}`, /nc/],
    ['cnonce without qop', `Digest ${good.replace(', qop=auth, nc=00000001', '')}`, /without qop/],
    ['unquoted uri', `Digest ${good.replace(`uri="${RURI}"`, `uri=${RURI}`)}`, /comma|empty/],
  ];
  for (const [name, header, reason] of table) {
    const v = await auth.verify(req([header]), creds);
    t.match(v, { kind: 'malformed', reason }, name);
    if (v.kind === 'malformed') t.notMatch(v.reason, /[\r\n\u0000-\u001f\u007f-\uffff]/, `${name}: reason is safe for a reason phrase`);
  }
  t.same(creds.lookups, [], 'no store lookups for malformed input');
});

t.test('nonce-count tracking is bounded; evicted nonces cannot be replayed', async (t) => {
  const cap = 8;
  const { auth, creds, clock } = setup({ maxTrackedNonces: cap });
  const first = auth.challenge();
  t.match(await auth.verify(req([authorize(first, { nc: 1 })]), creds), { kind: 'ok' });
  const unused = auth.challenge(); // minted early, used only after evictions
  let maxSize = 0;
  let oks = 0;
  for (let i = 0; i < 200; i++) {
    clock.now += 1;
    if ((await auth.verify(req([authorize(auth.challenge())]), creds)).kind === 'ok') oks++;
    maxSize = Math.max(maxSize, auth.trackedNonces);
  }
  t.equal(oks, 200, 'every fresh nonce authenticates');
  t.equal(maxSize, cap, 'size never exceeds the cap');
  t.match(await auth.verify(req([authorize(first, { nc: 1 })]), creds), { kind: 'stale', internalReason: 'evicted-nonce' }, 'replay of an evicted nonce is not accepted');
  t.match(await auth.verify(req([authorize(first, { nc: 2 })]), creds), { kind: 'stale' }, 'even with a higher nc');
  t.match(await auth.verify(req([authorize(unused)]), creds), { kind: 'stale' }, 'an old unseen nonce gets a fresh one too (fail closed)');

  // Expired entries go first and free the map.
  clock.now += 301_000;
  t.equal((await auth.verify(req([authorize(auth.challenge())]), creds)).kind, 'ok');
  t.equal(auth.trackedNonces, 1, 'expired entries pruned on insert');
});

/** Same security-relevant parameters (mutations may legitimately add LWS, change case or quoting). */
function equivalent(a: string, b: string): boolean {
  const pa = parseCredentials(a);
  const pb = parseCredentials(b);
  if (!pa.ok || !pb.ok) return false;
  const norm = (p: ReadonlyMap<string, string>) => ['username', 'realm', 'nonce', 'uri', 'qop', 'nc', 'cnonce', 'response', 'algorithm']
    .map((k) => (k === 'response' || k === 'algorithm' ? p.get(k)?.toLowerCase() : p.get(k)) ?? '').join('\0');
  return norm(pa.params) === norm(pb.params);
}

t.test('fuzz: random and mutated credentials never make verify throw', async (t) => {
  const { auth, creds } = setup({ maxTrackedNonces: 64 });
  const valid = authorize(auth.challenge());
  const kinds = new Set(['ok', 'missing', 'stale', 'failed', 'malformed']);
  const check = async (values: string[]) => {
    const v = await auth.verify(req(values), creds);
    if (!kinds.has(v.kind)) throw new Error(`unexpected verdict ${JSON.stringify(v)}`);
    if (v.kind === 'malformed' && (v.reason === '' || /[\r\n]/.test(v.reason))) throw new Error(`bad reason ${v.reason}`);
    if (v.kind === 'ok' && !equivalent(values[v.index] ?? '', valid)) throw new Error(`accepted a mutation: ${JSON.stringify(values)}`);
    parseCredentials(values[0] ?? '');
  };
  const alphabet = fc.constantFrom(...'Digest =,"\\\r\n\t abcnrqu0-9_-:@;/\u00e9\u5f20\u0000'.split(''));
  await fc.assert(fc.asyncProperty(fc.array(fc.string({ unit: 'binary', maxLength: 200 }), { maxLength: 3 }), check), { numRuns: 500 });
  await fc.assert(fc.asyncProperty(fc.string({ unit: alphabet, maxLength: 120 }).map((s) => [`Digest ${s}`]), check), { numRuns: 500 });
  // Mutations of a valid header: insert, delete or replace characters.
  const mutation = fc.record({
    at: fc.nat({ max: valid.length }),
    del: fc.nat({ max: 4 }),
    ins: fc.string({ unit: alphabet, maxLength: 4 }),
  });
  await fc.assert(fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (ms) => {
    let s = valid;
    for (const m of ms) s = s.slice(0, m.at) + m.ins + s.slice(m.at + m.del);
    if (s === valid) return;
    await check([s]);
  }), { numRuns: 1000 });
  t.pass('no exception escaped');
});
