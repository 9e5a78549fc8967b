/**
 * Character classes and small scanners from the RFC 3261 §25 ABNF, shared by
 * the URI, Via and name-addr parsers. Tables instead of regexes on the hot
 * path: a lookup per character is the cheapest test V8 can do.
 */
import { SipError, type SipErrorCode } from './errors.js';
import { EMPTY_PARAMS, Params } from './params.js';

function table(chars: string, alnum = true): Uint8Array {
  const t = new Uint8Array(128);
  if (alnum) {
    for (let c = 0x30; c <= 0x39; c++) t[c] = 1;
    for (let c = 0x41; c <= 0x5a; c++) t[c] = 1;
    for (let c = 0x61; c <= 0x7a; c++) t[c] = 1;
  }
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  return t;
}

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
export const TOKEN = table("-.!%*_+`'~");
/** word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" / "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}") (Call-ID) */
export const WORD = table("-.!%*_+`'~()<>:\\\"/[]?{}");
/** unreserved / user-unreserved: what may stand unescaped in a SIP-URI user part. */
export const USER = table("-_.!~*'()&=+$,;?/");
/** password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," ) */
export const PASSWORD = table("-_.!~*'()&=+$,");
/** paramchar = param-unreserved / unreserved / escaped; param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$" */
export const PARAMCHAR = table("[]/:&+$-_.!~*'()");
/** hnv-unreserved / unreserved (URI headers) */
export const HNVCHAR = table("[]/?:+$-_.!~*'()");
/** hostname / IPv4 characters; "_" is tolerated because real networks use it. */
export const HOSTCHAR = table('-._');
/** IPv6 reference inside [ ] */
export const IPV6CHAR = table(':.', false);
for (const c of '0123456789abcdefABCDEF') IPV6CHAR[c.charCodeAt(0)] = 1;

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || TOKEN[c] !== 1) return false;
  }
  return true;
}

export function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

export function skipWs(s: string, i: number): number {
  while (i < s.length && isWs(s.charCodeAt(i))) i++;
  return i;
}

/**
 * Reads a quoted-string starting at s[i] === '"'. Returns the unescaped
 * content and the index after the closing quote. Throws on an unterminated
 * string (RFC 4475 §3.1.2.6 "quotbal").
 *
 * quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
 * quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
 */
export function readQuoted(s: string, i: number, code: SipErrorCode, what: string): { value: string; end: number } {
  let out = '';
  let j = i + 1;
  let start = j;
  while (j < s.length) {
    const c = s.charCodeAt(j);
    if (c === 0x22) {
      out += s.slice(start, j);
      return { value: out, end: j + 1 };
    }
    if (c === 0x5c) {
      out += s.slice(start, j);
      if (j + 1 >= s.length) break;
      const n = s.charCodeAt(j + 1);
      if (n === 0x0a || n === 0x0d) throw new SipError(code, `Bad quoted-pair in ${what}`);
      out += s[j + 1];
      j += 2;
      start = j;
      continue;
    }
    if (c === 0x0d || c === 0x0a) break;
    j++;
  }
  throw new SipError(code, `Unterminated quoted string in ${what}`);
}

/**
 * Splits a header value at the commas that separate values (RFC 3261 §7.3.1:
 * "Header fields ... can be combined into a single header field row ...
 * separated by a comma"), ignoring commas inside quoted strings and <...>.
 * Empty elements are kept (as '') so that callers can reject them
 * (RFC 4475 §3.1.2.1 "badinv01": "Via: SIP/2.0/UDP 192.0.2.15;;,;,,").
 */
export function splitCommaList(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let inQuote = false;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (inQuote) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inQuote = false;
      continue;
    }
    if (c === 0x22) inQuote = true;
    else if (c === 0x3c) depth++;
    else if (c === 0x3e) { if (depth > 0) depth--; }
    else if (c === 0x2c && depth === 0) {
      out.push(s.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(s.slice(start).trim());
  return out;
}

/**
 * Parses generic header parameters `*( SEMI generic-param )` starting at
 * index i (which must be at a ';' or at the end, possibly after LWS).
 * generic-param = token [ EQUAL gen-value ]; gen-value = token / host / quoted-string
 * Names are lower-cased (parameter names are case-insensitive, §7.3.1);
 * values are kept as written (quoted strings keep their quotes so that a
 * proxy forwards them unchanged).
 */
export function parseGenericParams(s: string, i: number, code: SipErrorCode, what: string): Params {
  i = skipWs(s, i);
  if (i >= s.length) return EMPTY_PARAMS;
  // Collected in a scratch array, then copied at their exact size: an array
  // grown by push() from empty reserves 17 slots at once. (Not re-entrant,
  // and nothing below calls back in here.)
  const items = PARAM_SCRATCH;
  items.length = 0;
  while (i < s.length) {
    if (s.charCodeAt(i) !== 0x3b) throw new SipError(code, `Unexpected character in ${what} parameters`);
    i = skipWs(s, i + 1);
    const nameStart = i;
    while (i < s.length) {
      const c = s.charCodeAt(i);
      if (c > 127 || TOKEN[c] !== 1) break;
      i++;
    }
    if (i === nameStart) throw new SipError(code, `Empty parameter in ${what}`);
    const name = paramName(s, nameStart, i);
    i = skipWs(s, i);
    let value: string | null = null;
    if (i < s.length && s.charCodeAt(i) === 0x3d) {
      i = skipWs(s, i + 1);
      if (i < s.length && s.charCodeAt(i) === 0x22) {
        const q = readQuoted(s, i, code, what);
        value = s.slice(i, q.end);
        i = q.end;
      } else {
        const vStart = i;
        while (i < s.length) {
          const c = s.charCodeAt(i);
          // token / host (incl. IPv6 reference with [ ] and ':')
          if (c < 128 && (TOKEN[c] === 1 || c === 0x5b || c === 0x5d || c === 0x3a)) i++;
          else if (c >= 128) i++; // UTF-8 in extension params (RFC 4475 intmeth)
          else break;
        }
        if (i === vStart) throw new SipError(code, `Empty value for parameter ${name} in ${what}`);
        value = s.slice(vStart, i);
      }
      i = skipWs(s, i);
    }
    for (let k = 0; k < items.length; k += 2) if (items[k] === name) throw new SipError(code, `Duplicate parameter ${name} in ${what}`);
    items.push(name, value);
  }
  return new Params(items.slice());
}

const PARAM_SCRATCH: Array<string | null> = [];

/** Parameter names seen on every call, returned as these constants instead of a new string each. */
const COMMON_PARAM_NAMES = ['branch', 'rport', 'received', 'tag', 'lr', 'transport', 'user', 'maddr', 'ttl', 'expires', 'q', 'ob'];

/** The lower-cased name spelt by s[start, end). */
export function paramName(s: string, start: number, end: number): string {
  const len = end - start;
  for (const k of COMMON_PARAM_NAMES) {
    if (k.length !== len) continue;
    // `| 0x20` folds ASCII letters; no other token character folds onto a letter.
    let j = 0;
    while (j < len && (s.charCodeAt(start + j) | 0x20) === k.charCodeAt(j)) j++;
    if (j === len) return k;
  }
  return lowerAscii(s.slice(start, end));
}

/** s.toLowerCase(), without its new string when s has no upper-case ASCII letter (parameter names rarely do). */
export function lowerAscii(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return s.toLowerCase();
  }
  return s;
}

/** Removes surrounding quotes and quoted-pair escapes from a quoted gen-value. */
export function unquote(v: string): string {
  if (v.length >= 2 && v.charCodeAt(0) === 0x22 && v.charCodeAt(v.length - 1) === 0x22) {
    return v.slice(1, -1).replace(/\\(.)/g, '$1');
  }
  return v;
}

export function quote(s: string): string {
  return `"${s.replace(/(["\\])/g, '\\$1')}"`;
}
