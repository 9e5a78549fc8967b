/**
 * SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), plus any other
 * absoluteURI kept opaque so that a proxy can answer 416 instead of failing
 * to parse (RFC 4475 §3.3.2 "unkscm": "parser must accept; reject with 416").
 *
 * A parsed URI keeps the text it was parsed from: a proxy forwards URIs
 * byte-for-byte unless it changes them, so `toString()` of an unmodified URI
 * is its original text (escapes, parameter order and case preserved).
 */
import { SipError } from './errors.js';
import { HNVCHAR, HOSTCHAR, IPV6CHAR, PARAMCHAR, PASSWORD, USER, paramName } from './grammar.js';
import { EMPTY_PARAMS, Params } from './params.js';

export class SipUri {
  /** Lower-case scheme: 'sip', 'sips', 'tel', or another scheme kept opaque. */
  readonly scheme: string;
  /** User part as written (still %-escaped); for tel: the telephone-subscriber number. */
  readonly user: string | undefined;
  readonly password: string | undefined;
  /** Host as written; IPv6 references keep their brackets. Empty for tel: and opaque URIs. */
  readonly host: string;
  readonly port: number | undefined;
  /** uri-parameters, names lower-cased, values as written (escaped). */
  readonly params: Params;
  /** The `?headers` part as written, without the '?'. */
  readonly headers: string | undefined;
  /** For schemes we do not interpret: everything after the ':'. */
  readonly opaque: string | undefined;
  private readonly text: string;

  /**
   * Built by parseUri() from `text` (URIs are made from their text, so
   * toString() is always what was parsed); positional, so that parsing a
   * URI (several per message) allocates no fields object.
   */
  constructor(
    scheme: string, user: string | undefined, password: string | undefined, host: string, port: number | undefined,
    params: Params, headers: string | undefined, opaque: string | undefined, text: string,
  ) {
    this.scheme = scheme;
    this.user = user;
    this.password = password;
    this.host = host;
    this.port = port;
    this.params = params;
    this.headers = headers;
    this.opaque = opaque;
    this.text = text;
  }

  get isSip(): boolean {
    return this.scheme === 'sip' || this.scheme === 'sips';
  }

  /** The user part with %HH escapes decoded (RFC 3261 §19.1.4 compares unescaped). */
  get userDecoded(): string | undefined {
    return this.user === undefined ? undefined : unescapeUri(this.user);
  }

  /** transport uri-parameter, lower-cased, if present. */
  get transport(): string | undefined {
    const t = this.params.get('transport');
    return t ? t.toLowerCase() : undefined;
  }

  /** Host without IPv6 brackets, for socket calls. */
  get hostAddress(): string {
    return this.host.startsWith('[') ? this.host.slice(1, -1) : this.host;
  }

  toString(): string {
    return this.text;
  }
}

/** Decodes %HH escapes once (RFC 4475 §3.1.1.3: never recursively). */
export function unescapeUri(s: string): string {
  if (s.indexOf('%') < 0) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && i + 2 < s.length + 0 && isHex(s.charCodeAt(i + 1)) && isHex(s.charCodeAt(i + 2))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      for (const b of Buffer.from(s[i] ?? '', 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** Re-escapes a decoded user part so that it can stand in a SIP-URI again. */
export function escapeUser(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    if (b < 128 && USER[b] === 1) out += String.fromCharCode(b);
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/** Checks that every '%' in s starts a %HH escape and that chars are in `allowed`. */
function checkChars(s: string, allowed: Uint8Array, what: string): void {
  checkCharsIn(s, 0, s.length, allowed, what);
}

/** checkChars() on s[start, end), without slicing it out. */
function checkCharsIn(s: string, start: number, end: number, allowed: Uint8Array, what: string): void {
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      if (!isHex(s.charCodeAt(i + 1)) || !isHex(s.charCodeAt(i + 2))) {
        throw new SipError('DP_SIP_BAD_URI', `Bad escape in URI ${what}`);
      }
      i += 2;
      continue;
    }
    if (c > 127 || allowed[c] !== 1) throw new SipError('DP_SIP_BAD_URI', `Illegal character in URI ${what}`);
  }
}

export function parseUri(text: string): SipUri {
  const m = SCHEME_RE.exec(text);
  if (!m) throw new SipError('DP_SIP_BAD_URI', 'URI has no scheme');
  const scheme = m[0].slice(0, -1).toLowerCase();
  const rest = text.slice(m[0].length);
  if (scheme === 'sip' || scheme === 'sips') return parseSipUri(scheme, rest, text);
  if (scheme === 'tel') return parseTelUri(rest, text);
  // absoluteURI = scheme ":" ( hier-part / opaque-part ): kept opaque, but it
  // must still be one token on the wire (no LWS, quotes or angle brackets).
  if (rest.length === 0 || /[\s"<>]/.test(rest)) throw new SipError('DP_SIP_BAD_URI', 'Malformed absolute URI');
  return new SipUri(scheme, undefined, undefined, '', undefined, EMPTY_PARAMS, undefined, rest, text);
}

function parseSipUri(scheme: string, rest: string, text: string): SipUri {
  // The user part may hold '?' and ';' (user-unreserved, RFC 4475 intmeth,
  // semiuri) but never an unescaped '@', so the first '@' ends the userinfo;
  // '?' starts the headers only after the host.
  const at = rest.indexOf('@');
  let user: string | undefined;
  let password: string | undefined;
  let afterUser = rest;
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    afterUser = rest.slice(at + 1);
    const colon = userinfo.indexOf(':');
    user = colon < 0 ? userinfo : userinfo.slice(0, colon);
    if (colon >= 0) {
      password = userinfo.slice(colon + 1);
      checkChars(password, PASSWORD, 'password');
    }
    if (user.length === 0) throw new SipError('DP_SIP_BAD_URI', 'Empty user part in URI');
    checkChars(user, USER, 'user part');
  }
  const q = afterUser.indexOf('?');
  const hostPart = q < 0 ? afterUser : afterUser.slice(0, q);
  let headers: string | undefined;
  if (q >= 0) {
    headers = afterUser.slice(q + 1);
    checkChars(headers.replace(/[=&]/g, ''), HNVCHAR, 'headers');
  }
  // hostport
  let i = 0;
  let host: string;
  if (hostPart.charCodeAt(0) === 0x5b) {
    const close = hostPart.indexOf(']');
    if (close < 0) throw new SipError('DP_SIP_BAD_URI', 'Unterminated IPv6 reference in URI');
    host = hostPart.slice(0, close + 1);
    const inner = host.slice(1, -1);
    if (inner.length < 2 || inner.indexOf(':') < 0) throw new SipError('DP_SIP_BAD_URI', 'Bad IPv6 reference in URI');
    for (let k = 0; k < inner.length; k++) {
      const c = inner.charCodeAt(k);
      if (c > 127 || IPV6CHAR[c] !== 1) throw new SipError('DP_SIP_BAD_URI', 'Bad IPv6 reference in URI');
    }
    i = close + 1;
  } else {
    while (i < hostPart.length) {
      const c = hostPart.charCodeAt(i);
      if (c === 0x3a || c === 0x3b) break;
      if (c > 127 || HOSTCHAR[c] !== 1) throw new SipError('DP_SIP_BAD_URI', 'Illegal character in URI host');
      i++;
    }
    host = hostPart.slice(0, i);
    if (host.length === 0) throw new SipError('DP_SIP_BAD_URI', 'URI has no host');
  }
  let port: number | undefined;
  if (i < hostPart.length && hostPart.charCodeAt(i) === 0x3a) {
    const start = ++i;
    while (i < hostPart.length && hostPart.charCodeAt(i) >= 0x30 && hostPart.charCodeAt(i) <= 0x39) i++;
    // RFC 5118 §4.2: "sip:2001:db8::10" has no brackets; its "port" is not a number.
    if (i === start || i - start > 5) throw new SipError('DP_SIP_BAD_URI', 'Bad port in URI');
    port = Number(hostPart.slice(start, i));
    if (port > 65535) throw new SipError('DP_SIP_BAD_URI', 'Port out of range in URI');
  }
  let params = EMPTY_PARAMS;
  if (i < hostPart.length) {
    if (hostPart.charCodeAt(i) !== 0x3b) throw new SipError('DP_SIP_BAD_URI', 'Unexpected character after URI host');
    // uri-parameters = *( ";" uri-parameter ), walked with indexOf (no split arrays).
    const items = URI_PARAM_SCRATCH; // see parseGenericParams
    items.length = 0;
    let start = i + 1;
    for (;;) {
      let end = hostPart.indexOf(';', start);
      if (end < 0) end = hostPart.length;
      if (end === start) throw new SipError('DP_SIP_BAD_URI', 'Empty URI parameter');
      const eq = hostPart.indexOf('=', start);
      const hasValue = eq >= 0 && eq < end;
      const nameEnd = hasValue ? eq : end;
      if (nameEnd === start) throw new SipError('DP_SIP_BAD_URI', 'Empty URI parameter name');
      checkCharsIn(hostPart, start, nameEnd, PARAMCHAR, 'parameter');
      const value = hasValue ? hostPart.slice(eq + 1, end) : null;
      if (value !== null) checkChars(value, PARAMCHAR, 'parameter');
      // A name with an escape is decoded nowhere: it stays as written (lower-cased).
      const key = paramName(hostPart, start, nameEnd);
      for (let k = 0; k < items.length; k += 2) if (items[k] === key) throw new SipError('DP_SIP_BAD_URI', `Duplicate URI parameter ${key}`);
      items.push(key, value);
      if (end >= hostPart.length) break;
      start = end + 1;
    }
    params = new Params(items.slice());
  }
  return new SipUri(scheme, user, password, host, port, params, headers, undefined, text);
}

const URI_PARAM_SCRATCH: Array<string | null> = [];

/** tel URI (RFC 3966): telephone-subscriber *( ";" par ) — kept loosely. */
function parseTelUri(rest: string, text: string): SipUri {
  const parts = rest.split(';');
  const number = parts[0] ?? '';
  if (!/^\+?[0-9A-Fa-f*#().\-pPwW]+$/.test(number)) throw new SipError('DP_SIP_BAD_URI', 'Bad tel URI number');
  let params = EMPTY_PARAMS;
  for (const p of parts.slice(1)) {
    if (p.length === 0) throw new SipError('DP_SIP_BAD_URI', 'Empty tel URI parameter');
    const eq = p.indexOf('=');
    params = params.with((eq < 0 ? p : p.slice(0, eq)).toLowerCase(), eq < 0 ? null : p.slice(eq + 1));
  }
  return new SipUri('tel', number, undefined, '', undefined, params, undefined, undefined, text);
}

/**
 * Canonical address-of-record for a SIP/SIPS URI: scheme, unescaped-then-
 * re-escaped user, lower-case host; no port, parameters or headers
 * (RFC 3261 §10.3 step 5: "converting it to the canonical form ... all
 * URI parameters MUST be removed (including the user-param)").
 */
export function canonicalAor(uri: SipUri): string {
  const user = uri.user === undefined ? '' : `${escapeUser(unescapeUri(uri.user))}@`;
  return `${uri.scheme}:${user}${uri.host.toLowerCase()}`;
}
