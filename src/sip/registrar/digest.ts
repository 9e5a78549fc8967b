/**
 * SIP Digest authentication, server side (RFC 3261 §22, RFC 8760, RFC 7616).
 *
 * The registrar uses it for 401 WWW-Authenticate / Authorization and the proxy
 * for 407 Proxy-Authenticate / Proxy-Authorization. The module knows nothing
 * about tenants or storage: it is given a realm, a secret, a clock and a
 * {@link CredentialSource} holding HA1 hashes, and returns plain verdicts.
 *
 * Scope:
 * - algorithms MD5 and SHA-256, `qop=auth` only (RFC 8760 §2.6 keeps
 *   `auth-int` out of what we offer; `-sess` variants are not offered either);
 * - stateless nonces: base64url(timestamp ‖ random ‖ HMAC) — any node sharing
 *   the secret can verify a nonce minted by another node;
 * - nonce-count replay rejection, tracked per node in a bounded map;
 * - no user enumeration: an unknown user is verified against a keyed dummy
 *   HA1 and fails exactly like a wrong password.
 *
 * One {@link DigestAuthenticator} serves one realm. Keep the instance for the
 * life of the process (per realm): the nonce-count tracking lives in it.
 *
 * Header strings must reach us already decoded as UTF-8 (RFC 3261 §7.3.1:
 * quoted strings may carry UTF8-NONASCII); every hash input is UTF-8 encoded.
 *
 * Requests that cannot be challenged (ACK, CANCEL, RFC 3261 §22.1 and
 * §9.2) must not be passed here; that is the caller's rule.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { CredentialSource } from './credentials.js';

export type DigestAlgorithm = 'MD5' | 'SHA-256';

export interface DigestOptions {
  /** The realm we challenge with and accept credentials for. */
  realm: string;
  /**
   * Server secret (≥ 16 bytes) for nonce MACs and dummy HA1s. Every node of
   * a cluster that should accept each other's nonces shares it.
   */
  secret: Buffer;
  /** Milliseconds since the epoch. Injected so tests never sleep. */
  now: () => number;
  /** Nonce lifetime; older nonces yield `stale`. Default 300 000 (5 min). */
  nonceTtlMs?: number;
  /**
   * Offered algorithms, most preferred first (RFC 8760 §2.4: one challenge
   * per algorithm, in order of preference). Default ['SHA-256', 'MD5'].
   */
  algorithms?: DigestAlgorithm[];
  /** Cap on nonces whose nonce-count we track. Default 100 000. */
  maxTrackedNonces?: number;
  /** How far in the future a nonce timestamp may be (node clock skew). Default 5 000. */
  maxClockSkewMs?: number;
  /**
   * Accept MD5 responses without `qop` (RFC 2069 form, as RFC 2543 clients
   * send). Default true; see "Responses without qop" in {@link DigestAuthenticator}.
   */
  allowRfc2069?: boolean;
}

/** Why a request failed; for our logs only, never sent to the peer. */
export type DigestFailureReason =
  | 'unknown-user'
  | 'bad-response'
  | 'replay'
  | 'bad-nonce'
  | 'future-nonce'
  | 'unsupported-algorithm'
  | 'unsupported-qop'
  | 'qop-required'
  | 'userhash-unsupported';

/** Why the credentials were right but the nonce can no longer be used. */
export type DigestStaleReason =
  /** Older than `nonceTtlMs` (RFC 7616 §3.3 `stale`). */
  | 'expired-nonce'
  /** Its nonce-count state was evicted from the bounded map; the client must get a fresh nonce. */
  | 'evicted-nonce'
  /** An RFC 2069 (no-qop) response reused a nonce; without nc each nonce is single-use. */
  | 'reused-nonce';

export type DigestVerdict =
  /** Authenticated. `index` is the position of the credentials used in `authorization`. */
  | { kind: 'ok'; username: string; algorithm: DigestAlgorithm; index: number }
  /** No Digest credentials for our realm: answer with `challenge()`. */
  | { kind: 'missing' }
  /** Right credentials, unusable nonce: answer with `challenge({ stale: true })`. */
  | { kind: 'stale'; username: string; internalReason: DigestStaleReason }
  /**
   * Wrong password, unknown user, replay, unsupported algorithm or qop...:
   * answer with the same `challenge()` in every case, leaking nothing.
   * `username` is what the peer claimed (for logs and rate limiting).
   */
  | { kind: 'failed'; username: string; internalReason: DigestFailureReason }
  /**
   * Syntactically unusable credentials: answer 400 Bad Request. `reason` is
   * safe to put in the reason phrase (ASCII, no CR/LF, no peer bytes echoed
   * except token-syntax parameter names).
   */
  | { kind: 'malformed'; reason: string };

/** One parsed credentials header value (`Authorization` / `Proxy-Authorization`). */
export type ParsedCredentials =
  | { ok: true; scheme: string; params: ReadonlyMap<string, string> }
  | { ok: false; reason: string };

const DEFAULT_TTL_MS = 300_000;
const DEFAULT_MAX_TRACKED = 100_000;
const DEFAULT_SKEW_MS = 5_000;
/** Longest credentials header value we parse; a real one is under 1 KiB. */
const MAX_VALUE_LENGTH = 8192;
/** More credentials values than this in one request is an attack, not a client. */
const MAX_VALUES = 16;
const MAX_PARAMS = 32;

const HASH: Record<DigestAlgorithm, { node: string; hexLength: number }> = {
  'MD5': { node: 'md5', hexLength: 32 },
  'SHA-256': { node: 'sha256', hexLength: 64 },
};

// Nonce layout (bytes): 6 timestamp (ms, big-endian; good until year 10889)
// ‖ 10 random ‖ 16 truncated HMAC-SHA256 = 32 bytes = 43 base64url chars.
const TS_BYTES = 6;
const RANDOM_BYTES = 10;
const MAC_BYTES = 16;
const NONCE_BYTES = TS_BYTES + RANDOM_BYTES + MAC_BYTES;
const NONCE_RE = /^[A-Za-z0-9_-]{43}$/;

/** HA1 = H(username ":" realm ":" password) (RFC 7616 §3.4.2), lowercase hex. */
export function computeHa1(alg: DigestAlgorithm, username: string, realm: string, password: string): string {
  return hash(alg, `${username}:${realm}:${password}`);
}

export interface DigestResponseInput {
  algorithm: DigestAlgorithm;
  /** Lowercase hex HA1. */
  ha1: string;
  nonce: string;
  method: string;
  uri: string;
  /** When present, `nc` and `cnonce` must be too (RFC 7616 §3.4.1); when absent, RFC 2069 form. */
  qop?: string;
  nc?: string;
  cnonce?: string;
}

/**
 * The `response` value (RFC 7616 §3.4.1, RFC 2617 §3.2.2.1):
 *   qop present: KD(HA1, nonce ":" nc ":" cnonce ":" qop ":" HA2)
 *   qop absent:  KD(HA1, nonce ":" HA2)           (RFC 2069 compatibility)
 * with HA2 = H(method ":" uri) for qop=auth, KD(s, d) = H(s ":" d).
 */
export function computeDigestResponse(input: DigestResponseInput): string {
  const ha2 = hash(input.algorithm, `${input.method}:${input.uri}`);
  const data = input.qop === undefined
    ? `${input.nonce}:${ha2}`
    : `${input.nonce}:${input.nc ?? ''}:${input.cnonce ?? ''}:${input.qop}:${ha2}`;
  return hash(input.algorithm, `${input.ha1}:${data}`);
}

function hash(alg: DigestAlgorithm, data: string): string {
  return createHash(HASH[alg].node).update(data, 'utf8').digest('hex');
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") (RFC 3261 §25.1) */
function isTokenChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x2d || c === 0x2e || c === 0x21 || c === 0x25 || c === 0x2a || c === 0x5f ||
    c === 0x2b || c === 0x60 || c === 0x27 || c === 0x7e;
}

function isWsp(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** A parameter name is a token, so it is safe in a reason phrase; still cap its length. */
function shown(name: string): string {
  return name.length > 32 ? `${name.slice(0, 32)}...` : name;
}

/**
 * Parse one `Authorization` / `Proxy-Authorization` value:
 *   credentials = auth-scheme LWS param *(COMMA param)
 *   param       = token EQUAL ( token / quoted-string )      (RFC 3261 §25.1, §22.4)
 * Scheme and parameter names are case-insensitive (names are returned
 * lowercased); values keep their case with quoted-pair escapes removed.
 * Parameters of schemes other than Digest are not parsed. Never throws.
 */
export function parseCredentials(value: string): ParsedCredentials {
  if (typeof value !== 'string') return { ok: false, reason: 'credentials value is not a string' };
  if (value.length > MAX_VALUE_LENGTH) return { ok: false, reason: 'credentials value too long' };
  // Unfold LWS (RFC 3261 §7.3.1) in case the message layer did not; a CR or LF left after that is illegal.
  const s = value.replace(/\r?\n[ \t]+/g, ' ');
  if (/[\r\n]/.test(s)) return { ok: false, reason: 'bare CR or LF in credentials' };

  let i = 0;
  const skipWsp = (): void => {
    while (i < s.length && isWsp(s.charCodeAt(i))) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < s.length && isTokenChar(s.charCodeAt(i))) i++;
    return s.slice(start, i);
  };

  skipWsp();
  if (i === s.length) return { ok: false, reason: 'empty credentials' };
  const scheme = readToken();
  if (scheme === '') return { ok: false, reason: 'missing auth scheme' };
  const afterScheme = i;
  skipWsp();
  if (i < s.length && s.charCodeAt(i) === 0x3d /* = */) {
    return { ok: false, reason: 'missing auth scheme' };
  }
  if (scheme.toLowerCase() !== 'digest') return { ok: true, scheme, params: new Map() };
  if (i === s.length) return { ok: false, reason: 'Digest credentials without parameters' };
  if (i === afterScheme) return { ok: false, reason: 'missing whitespace after auth scheme' };

  const params = new Map<string, string>();
  for (;;) {
    skipWsp();
    const name = readToken().toLowerCase();
    if (name === '') {
      return { ok: false, reason: i === s.length ? 'trailing comma in credentials' : 'expected a parameter name' };
    }
    skipWsp();
    if (i >= s.length || s.charCodeAt(i) !== 0x3d /* = */) {
      return { ok: false, reason: `parameter ${shown(name)} has no value` };
    }
    i++;
    skipWsp();
    let val: string;
    if (i < s.length && s.charCodeAt(i) === 0x22 /* " */) {
      // quoted-string = SWS DQUOTE *(qdtext / quoted-pair) DQUOTE
      // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
      i++;
      let out = '';
      let closed = false;
      while (i < s.length) {
        const c = s.charCodeAt(i);
        if (c === 0x22) { closed = true; i++; break; }
        if (c === 0x5c /* \ */) {
          if (i + 1 >= s.length) break;
          const e = s.charCodeAt(i + 1);
          if (e > 0x7f) return { ok: false, reason: `bad escape in parameter ${shown(name)}` };
          out += s[i + 1];
          i += 2;
          continue;
        }
        // qdtext excludes controls other than (unfolded) LWS.
        if ((c < 0x20 && c !== 0x09) || c === 0x7f) {
          return { ok: false, reason: `control character in parameter ${shown(name)}` };
        }
        out += s[i];
        i++;
      }
      if (!closed) return { ok: false, reason: `unterminated quoted string in parameter ${shown(name)}` };
      val = out;
    } else {
      val = readToken();
      if (val === '') return { ok: false, reason: `parameter ${shown(name)} has an empty or invalid value` };
    }
    if (params.has(name)) return { ok: false, reason: `duplicate parameter ${shown(name)}` };
    if (params.size >= MAX_PARAMS) return { ok: false, reason: 'too many parameters' };
    params.set(name, val);
    skipWsp();
    if (i === s.length) break;
    if (s.charCodeAt(i) !== 0x2c /* , */) {
      return { ok: false, reason: `expected a comma after parameter ${shown(name)}` };
    }
    i++;
  }
  return { ok: true, scheme, params };
}

// ---------------------------------------------------------------------------
// Authenticator
// ---------------------------------------------------------------------------

interface NonceState {
  /** Highest nonce-count accepted; Infinity once used without qop (single use). */
  nc: number;
  /** Nonce timestamp (ms) — its expiry is `ts + ttl`. */
  ts: number;
}

/**
 * Issues challenges and verifies credentials for one realm.
 *
 * Replay protection: with qop=auth each accepted request must carry a
 * nonce-count strictly greater than the last one accepted for that nonce
 * (RFC 7616 §3.4: "the server ... can detect request replays by maintaining its
 * own copy of this count"). Only verified requests update the count, so a
 * forged request with nc=ffffffff cannot lock a real client out. Requests that
 * arrive out of order over UDP (nc=3 before nc=2) make the later one fail; the
 * client is re-challenged and retries with a fresh nonce — one extra round trip.
 *
 * KNOWN LIMITATION — the nonce-count map is per node. Nonces are stateless
 * (any node with the secret accepts them), but the nc history is not shared:
 * a request captured on the wire and replayed to *another* node of a cluster
 * is accepted there until the nonce expires (`nonceTtlMs`). Keep the TTL short,
 * use TLS/WSS, or pin a client's traffic to one node to narrow that window.
 *
 * Memory: the map holds at most `maxTrackedNonces` entries. Entries whose
 * nonce has expired are dropped first; if the map is still full the oldest
 * entry is evicted and its nonce timestamp raises an eviction watermark. A
 * later request on a nonce that is not tracked but is not newer than the
 * watermark may be a replay of an evicted nonce, so it gets `stale` (fresh
 * nonce) rather than `ok`: a flood can cost legitimate clients a round trip,
 * never turn into an accepted replay.
 *
 * Responses without qop (RFC 2069 form): RFC 3261 §22.4 keeps qop optional
 * for servers to *receive* because RFC 2543 clients never send it, though we
 * always offer it. We accept them for MD5 only (RFC 7616 and RFC 8760 make
 * qop mandatory for the newer algorithms), unless `allowRfc2069: false`.
 * Without nc there is no counter to protect against replays, so such a nonce
 * is single-use: the first verified request consumes it, any reuse gets
 * `stale` and the client repeats the request with a fresh nonce, without
 * re-prompting for a password.
 */
export class DigestAuthenticator {
  private readonly realm: string;
  private readonly now: () => number;
  private readonly ttlMs: number;
  private readonly skewMs: number;
  private readonly algorithms: readonly DigestAlgorithm[];
  private readonly maxTracked: number;
  private readonly allowRfc2069: boolean;
  private readonly nonceKey: Buffer;
  private readonly dummyKey: Buffer;
  /** nonce → state, in insertion order (≈ age) for eviction. */
  private readonly tracked = new Map<string, NonceState>();
  /** Newest timestamp of a nonce evicted while still valid (−∞ if none). */
  private evictedWatermark = Number.NEGATIVE_INFINITY;

  constructor(opts: DigestOptions) {
    if (typeof opts.realm !== 'string' || opts.realm === '' || /[\x00-\x1f\x7f]/.test(opts.realm)) {
      throw new TypeError('DigestAuthenticator: realm must be a non-empty string without control characters');
    }
    if (!Buffer.isBuffer(opts.secret) || opts.secret.length < 16) {
      throw new TypeError('DigestAuthenticator: secret must be a Buffer of at least 16 bytes');
    }
    const ttl = opts.nonceTtlMs ?? DEFAULT_TTL_MS;
    const skew = opts.maxClockSkewMs ?? DEFAULT_SKEW_MS;
    const cap = opts.maxTrackedNonces ?? DEFAULT_MAX_TRACKED;
    if (!Number.isSafeInteger(ttl) || ttl <= 0) throw new RangeError('DigestAuthenticator: nonceTtlMs must be a positive integer');
    if (!Number.isSafeInteger(skew) || skew < 0) throw new RangeError('DigestAuthenticator: maxClockSkewMs must be a non-negative integer');
    if (!Number.isSafeInteger(cap) || cap <= 0) throw new RangeError('DigestAuthenticator: maxTrackedNonces must be a positive integer');
    const algorithms = opts.algorithms ?? ['SHA-256', 'MD5'];
    if (algorithms.length === 0 || new Set(algorithms).size !== algorithms.length ||
      algorithms.some((a) => !Object.hasOwn(HASH, a))) {
      throw new RangeError('DigestAuthenticator: algorithms must be a non-empty list of distinct MD5 / SHA-256');
    }
    this.realm = opts.realm;
    this.now = opts.now;
    this.ttlMs = ttl;
    this.skewMs = skew;
    this.maxTracked = cap;
    this.algorithms = Object.freeze([...algorithms]);
    this.allowRfc2069 = opts.allowRfc2069 ?? true;
    // Separate keys per use, derived from the one secret (domain separation).
    this.nonceKey = createHmac('sha256', opts.secret).update('dialplane/digest/nonce-mac/v1').digest();
    this.dummyKey = createHmac('sha256', opts.secret).update('dialplane/digest/dummy-ha1/v1').digest();
  }

  /** Number of nonces whose nonce-count is currently tracked (≤ maxTrackedNonces). */
  get trackedNonces(): number {
    return this.tracked.size;
  }

  /**
   * Header values for WWW-Authenticate (401) or Proxy-Authenticate (407), one
   * per algorithm, most preferred first (RFC 8760 §2.4). They share one fresh
   * nonce, as in RFC 7616 §3.9.1. We always send qop="auth" (RFC 3261 §22.4:
   * servers MUST always send qop). `stale: true` after a `stale` verdict.
   */
  challenge(opts: { stale?: boolean } = {}): string[] {
    const nonce = this.mintNonce();
    const realm = quote(this.realm);
    const stale = opts.stale === true ? ', stale=true' : '';
    return this.algorithms.map(
      (alg) => `Digest realm=${realm}, nonce="${nonce}", algorithm=${alg}, qop="auth"${stale}`,
    );
  }

  /**
   * Verify the request's credentials. `authorization` holds every
   * Authorization (registrar) or Proxy-Authorization (proxy) header value;
   * the one whose realm is ours is used (RFC 3261 §22.3). `requestUri` is the
   * Request-URI exactly as received; the `uri` parameter must equal it.
   *
   * Peer input never makes this throw or reject; a rejection from
   * `creds.lookup` (store down) propagates for the caller to answer 500/503.
   */
  async verify(
    req: {
      method: string;
      requestUri: string;
      authorization: readonly string[];
      /**
       * Other `uri` values that designate the same resource. A proxy passes
       * "a URI of this server": SIPp's [authentication] (and UAs behind a
       * proxy that rewrote the Request-URI) put the server's address there,
       * not the full Request-URI. The response digest still covers the value.
       */
      alsoAccept?: (uri: string) => boolean;
    },
    creds: CredentialSource,
  ): Promise<DigestVerdict> {
    const picked = this.pick(req.authorization);
    if (picked.kind !== 'picked') return picked;
    const { params, index } = picked;

    const username = params.get('username');
    const nonce = params.get('nonce');
    const uri = params.get('uri');
    const response = params.get('response');
    if (username === undefined) {
      return malformed(params.has('username*') ? 'username* is not supported' : 'missing username parameter');
    }
    if (params.has('username*')) return malformed('both username and username* present');
    if (nonce === undefined) return malformed('missing nonce parameter');
    if (uri === undefined) return malformed('missing uri parameter');
    if (response === undefined) return malformed('missing response parameter');
    // RFC 2617 §3.2.2.5: the uri must designate the Request-URI's resource,
    // "if they are not, the server SHOULD return a 400 Bad Request error".
    if (uri !== req.requestUri && !(req.alsoAccept?.(uri) ?? false)) return malformed('uri parameter does not match the Request-URI');

    const qop = params.get('qop');
    const nc = params.get('nc');
    const cnonce = params.get('cnonce');
    if (qop !== undefined) {
      // RFC 7616 §3.4: with qop, cnonce and nc MUST be sent; nc is 8LHEX.
      if (cnonce === undefined) return malformed('qop without cnonce parameter');
      if (nc === undefined) return malformed('qop without nc parameter');
      if (!/^[0-9A-Fa-f]{8}$/.test(nc)) return malformed('nc parameter is not 8 hex digits');
    } else if (cnonce !== undefined || nc !== undefined) {
      // RFC 2617 §3.2.2: cnonce/nc MUST NOT be sent without qop.
      return malformed('cnonce or nc without qop parameter');
    }

    // Semantic mismatches below are `failed`: the peer gets our challenge,
    // which tells it what we do support (algorithms, qop="auth").
    const failed = (internalReason: DigestFailureReason): DigestVerdict => ({ kind: 'failed', username, internalReason });
    const algorithm = parseAlgorithm(params.get('algorithm'));
    if (algorithm === undefined || !this.algorithms.includes(algorithm)) return failed('unsupported-algorithm');
    if (qop !== undefined && qop.toLowerCase() !== 'auth') return failed('unsupported-qop'); // auth-int included
    if (qop === undefined && (algorithm !== 'MD5' || !this.allowRfc2069)) return failed('qop-required');
    if ((params.get('userhash') ?? 'false').toLowerCase() !== 'false') return failed('userhash-unsupported');

    const nonceTs = this.checkNonce(nonce);
    if (nonceTs === 'bad') return failed('bad-nonce');
    if (nonceTs === 'future') return failed('future-nonce');

    // No user enumeration (SIPVicious `svwar` and friends compare the answers
    // to known and unknown users): the dummy HA1 is always computed, and for an
    // unknown user the response is checked against it exactly as a stored HA1
    // would be. The outcome is the same `failed` as for a wrong password, and
    // the caller answers with the same challenge(). The dummy is keyed by our
    // secret so nobody can compute a response that matches it; a match would
    // still not count, since `ok`/`stale` also require that the user exists.
    // (Store latency for absent vs present users is the store's concern.)
    const dummyHa1 = createHmac('sha256', this.dummyKey)
      .update(`${algorithm}\0${this.realm}\0${username}`, 'utf8')
      .digest('hex')
      .slice(0, HASH[algorithm].hexLength);
    const user = await creds.lookup(username, this.realm);
    const stored = user === undefined ? undefined : (algorithm === 'MD5' ? user.ha1Md5 : user.ha1Sha256);
    const known = stored !== undefined && stored.length === HASH[algorithm].hexLength;
    const ha1 = known ? stored.toLowerCase() : dummyHa1;

    const expected = computeDigestResponse({
      algorithm, ha1, nonce, method: req.method, uri,
      ...(qop !== undefined ? { qop, nc, cnonce } : {}),
    });
    const matches = constantTimeEqual(expected, response.toLowerCase());
    if (!known) return failed('unknown-user');
    if (!matches) return failed('bad-response');

    const now = this.now();
    // RFC 7616 §3.3 stale: "the previous request from the client was rejected
    // because the nonce value was stale" — only said once the digest is right.
    if (now - nonceTs > this.ttlMs) return { kind: 'stale', username, internalReason: 'expired-nonce' };

    const state = this.tracked.get(nonce);
    if (state === undefined && nonceTs <= this.evictedWatermark) {
      return { kind: 'stale', username, internalReason: 'evicted-nonce' };
    }
    if (qop === undefined) {
      if (state !== undefined) return { kind: 'stale', username, internalReason: 'reused-nonce' };
      this.track(nonce, { nc: Number.POSITIVE_INFINITY, ts: nonceTs }, now);
    } else {
      const count = Number.parseInt(nc ?? '', 16);
      if (state !== undefined && count <= state.nc) return failed('replay');
      if (state === undefined && count === 0) return failed('replay'); // nc starts at 1
      if (state !== undefined) state.nc = count;
      else this.track(nonce, { nc: count, ts: nonceTs }, now);
    }
    return { kind: 'ok', username, algorithm, index };
  }

  /** Find the one Digest credentials value for our realm. */
  private pick(values: readonly string[]):
    | { kind: 'picked'; params: ReadonlyMap<string, string>; index: number }
    | { kind: 'missing' }
    | { kind: 'malformed'; reason: string } {
    if (!Array.isArray(values)) return malformed('credentials are not a list');
    if (values.length > MAX_VALUES) return malformed('too many credentials header values');
    let found: { params: ReadonlyMap<string, string>; index: number } | undefined;
    let firstError: string | undefined;
    for (let index = 0; index < values.length; index++) {
      const parsed = parseCredentials(values[index] ?? '');
      if (!parsed.ok) {
        firstError ??= parsed.reason;
        continue;
      }
      if (parsed.scheme.toLowerCase() !== 'digest') continue; // e.g. Basic: never accepted (RFC 3261 §22.4 item 1)
      if (parsed.params.get('realm') !== this.realm) continue; // another realm's credentials
      if (found !== undefined) return malformed('more than one set of credentials for our realm');
      found = { params: parsed.params, index };
    }
    if (found !== undefined) return { kind: 'picked', ...found };
    // An unparseable value might have been ours: say why rather than re-challenge forever.
    if (firstError !== undefined) return malformed(firstError);
    return { kind: 'missing' };
  }

  private mintNonce(): string {
    const buf = Buffer.alloc(NONCE_BYTES);
    buf.writeUIntBE(clampTs(this.now()), 0, TS_BYTES);
    randomBytes(RANDOM_BYTES).copy(buf, TS_BYTES);
    this.mac(buf).copy(buf, TS_BYTES + RANDOM_BYTES);
    return buf.toString('base64url');
  }

  /** MAC over timestamp ‖ random ‖ realm; binding the realm stops cross-realm reuse under a shared secret. */
  private mac(buf: Buffer): Buffer {
    return createHmac('sha256', this.nonceKey)
      .update(buf.subarray(0, TS_BYTES + RANDOM_BYTES))
      .update(this.realm, 'utf8')
      .digest()
      .subarray(0, MAC_BYTES);
  }

  /** The nonce's timestamp if we minted it, else why not. Expiry is judged later. */
  private checkNonce(nonce: string): number | 'bad' | 'future' {
    // Buffer.from(.., 'base64url') skips junk characters, so check the alphabet first.
    if (!NONCE_RE.test(nonce)) return 'bad';
    const buf = Buffer.from(nonce, 'base64url');
    // Canonical encoding only: the last character carries 2 spare bits, so
    // several strings decode to the same bytes; accept just the one we minted.
    if (buf.length !== NONCE_BYTES || buf.toString('base64url') !== nonce) return 'bad';
    if (!timingSafeEqual(this.mac(buf), buf.subarray(TS_BYTES + RANDOM_BYTES))) return 'bad';
    const ts = buf.readUIntBE(0, TS_BYTES);
    if (ts > this.now() + this.skewMs) return 'future';
    return ts;
  }

  private track(nonce: string, state: NonceState, now: number): void {
    // Drop expired entries at the head (oldest first); they can only yield `stale` anyway.
    for (const [key, old] of this.tracked) {
      if (now - old.ts <= this.ttlMs) break;
      this.tracked.delete(key);
    }
    while (this.tracked.size >= this.maxTracked) {
      const head = this.tracked.entries().next();
      if (head.done === true) break;
      const [key, old] = head.value;
      this.tracked.delete(key);
      if (now - old.ts <= this.ttlMs && old.ts > this.evictedWatermark) this.evictedWatermark = old.ts;
    }
    this.tracked.set(nonce, state);
  }
}

function malformed(reason: string): { kind: 'malformed'; reason: string } {
  return { kind: 'malformed', reason };
}

/** `algorithm` absent means MD5 (RFC 2617 §3.2.1, RFC 7616 §3.3). Tokens compared case-insensitively. */
function parseAlgorithm(value: string | undefined): DigestAlgorithm | undefined {
  if (value === undefined) return 'MD5';
  switch (value.toUpperCase()) {
    case 'MD5': return 'MD5';
    case 'SHA-256': return 'SHA-256';
    default: return undefined; // MD5-sess, SHA-256-sess, SHA-512-256... not offered
  }
}

function constantTimeEqual(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given, 'utf8');
  // Lengths are public (fixed by the algorithm); only equal-length contents are compared in constant time.
  return a.length === b.length && timingSafeEqual(a, b);
}

function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function clampTs(t: number): number {
  const ms = Math.floor(t);
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), 2 ** (8 * TS_BYTES) - 1) : 0;
}
