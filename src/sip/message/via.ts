/**
 * Via (RFC 3261 §20.42, §18.2.1, RFC 3581):
 *   via-parm = sent-protocol LWS sent-by *( SEMI via-params )
 *   sent-protocol = protocol-name SLASH protocol-version SLASH transport
 *   sent-by = host [ COLON port ]
 */
import { SipError } from './errors.js';
import { HOSTCHAR, IPV6CHAR, TOKEN, isWs, parseGenericParams, skipWs } from './grammar.js';
import type { Params } from './params.js';

/** "The branch ID inserted by an element compliant with this specification MUST always begin with the characters "z9hG4bK"." (§8.1.1.7) */
export const MAGIC_COOKIE = 'z9hG4bK';

export class Via {
  constructor(
    /** Upper-case transport: UDP, TCP, TLS, SCTP, WS, WSS, or anything else seen. */
    readonly transport: string,
    /** sent-by host as written (IPv6 with brackets). */
    readonly host: string,
    readonly port: number | undefined,
    readonly params: Params,
  ) {}

  get branch(): string | undefined {
    return this.params.get('branch') ?? undefined;
  }

  /** RFC 3261 §17.2.3: the branch starts with the magic cookie. */
  get isRfc3261Branch(): boolean {
    const b = this.branch;
    return b !== undefined && b.startsWith(MAGIC_COOKIE);
  }

  get received(): string | undefined {
    return this.params.get('received') ?? undefined;
  }

  /** rport: undefined when absent, null when present without a value (RFC 3581 §3). */
  get rport(): string | null | undefined {
    return this.params.has('rport') ? this.params.get('rport') : undefined;
  }

  /** Whether sent-by's host is this IP address (brackets and IPv4-mapped forms ignored). */
  hostAddressEquals(address: string): boolean {
    const h = this.host.startsWith('[') ? this.host.slice(1, -1) : this.host;
    const a = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
    return h.toLowerCase() === a.toLowerCase();
  }

  toString(): string {
    let s = `SIP/2.0/${this.transport} ${this.host}`;
    if (this.port !== undefined) s += `:${this.port}`;
    return s + this.params.toString();
  }
}

function readToken(s: string, i: number): number {
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c > 127 || TOKEN[c] !== 1) break;
    i++;
  }
  return i;
}

function expectSlash(s: string, i: number): number {
  i = skipWs(s, i);
  if (s.charCodeAt(i) !== 0x2f) throw new SipError('DP_SIP_BAD_VIA', 'Malformed Via sent-protocol');
  return skipWs(s, i + 1);
}

export function parseVia(value: string): Via {
  const s = value.trim();
  if (s.length === 0) throw new SipError('DP_SIP_BAD_VIA', 'Empty Via value');
  let i = readToken(s, 0);
  if (s.slice(0, i).toUpperCase() !== 'SIP') throw new SipError('DP_SIP_BAD_VIA', 'Via protocol is not SIP');
  i = expectSlash(s, i);
  let j = readToken(s, i);
  if (s.slice(i, j) !== '2.0') throw new SipError('DP_SIP_BAD_VIA', 'Via protocol version is not 2.0', 400);
  i = expectSlash(s, j);
  j = readToken(s, i);
  if (j === i) throw new SipError('DP_SIP_BAD_VIA', 'Via has no transport');
  const transport = s.slice(i, j).toUpperCase();
  i = j;
  if (!isWs(s.charCodeAt(i))) throw new SipError('DP_SIP_BAD_VIA', 'Via needs whitespace before sent-by');
  i = skipWs(s, i);
  let host: string;
  if (s.charCodeAt(i) === 0x5b) {
    const close = s.indexOf(']', i);
    if (close < 0) throw new SipError('DP_SIP_BAD_VIA', 'Unterminated IPv6 reference in Via');
    for (let k = i + 1; k < close; k++) {
      const c = s.charCodeAt(k);
      if (c > 127 || IPV6CHAR[c] !== 1) throw new SipError('DP_SIP_BAD_VIA', 'Bad IPv6 reference in Via');
    }
    host = s.slice(i, close + 1);
    i = close + 1;
  } else {
    const start = i;
    while (i < s.length) {
      const c = s.charCodeAt(i);
      if (c > 127 || HOSTCHAR[c] !== 1) break;
      i++;
    }
    host = s.slice(start, i);
    if (host.length === 0) throw new SipError('DP_SIP_BAD_VIA', 'Via has no sent-by host');
  }
  i = skipWs(s, i);
  let port: number | undefined;
  if (s.charCodeAt(i) === 0x3a) {
    i = skipWs(s, i + 1);
    const start = i;
    while (i < s.length && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) i++;
    if (i === start || i - start > 5) throw new SipError('DP_SIP_BAD_VIA', 'Bad port in Via');
    port = Number(s.slice(start, i));
    if (port > 65535 || port === 0) throw new SipError('DP_SIP_BAD_VIA', 'Port out of range in Via');
  }
  const params = parseGenericParams(s, i, 'DP_SIP_BAD_VIA', 'Via');
  const branch = params.get('branch');
  if (params.has('branch') && (branch === null || branch === undefined)) throw new SipError('DP_SIP_BAD_VIA', 'Via branch has no value');
  // RFC 4475 §3.2.1 "badbranch": a branch that is only the magic cookie
  // cannot identify a transaction; we reject it rather than guess.
  if (branch === MAGIC_COOKIE) throw new SipError('DP_SIP_BAD_VIA', 'Via branch is only the magic cookie');
  return new Via(transport, host, port, params);
}
