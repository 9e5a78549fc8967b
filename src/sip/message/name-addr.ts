/**
 * name-addr / addr-spec with header parameters, the shape of From, To,
 * Contact, Route, Record-Route, Path, Reply-To... (RFC 3261 §20.10, §25.1):
 *
 *   name-addr    = [ display-name ] LAQUOT addr-spec RAQUOT
 *   display-name = *(token LWS)/ quoted-string
 *
 * "If the URI is not enclosed in angle brackets, any semicolon-delimited
 *  parameters are header-parameters, not URI parameters." (§20)
 */
import { SipError } from './errors.js';
import { TOKEN, isWs, parseGenericParams, quote, readQuoted, skipWs } from './grammar.js';
import type { Params } from './params.js';
import { parseUri, type SipUri } from './uri.js';

export class NameAddr {
  constructor(
    readonly uri: SipUri,
    readonly displayName: string | undefined,
    readonly params: Params,
    /** Whether the URI was written inside < >. */
    readonly bracketed: boolean,
  ) {}

  get tag(): string | undefined {
    return this.params.get('tag') ?? undefined;
  }

  toString(): string {
    let s = this.displayName !== undefined ? `${quote(this.displayName)} ` : '';
    s += `<${this.uri.toString()}>`;
    return s + this.params.toString();
  }
}

export function parseNameAddr(value: string, what: string): NameAddr {
  const s = value.trim();
  if (s.length === 0) throw new SipError('DP_SIP_BAD_NAME_ADDR', `Empty ${what} header`);
  let display: string | undefined;
  let lt: number;
  if (s.charCodeAt(0) === 0x22) {
    const q = readQuoted(s, 0, 'DP_SIP_BAD_NAME_ADDR', what);
    display = q.value;
    const i = skipWs(s, q.end);
    if (s.charCodeAt(i) !== 0x3c) throw new SipError('DP_SIP_BAD_NAME_ADDR', `Expected < after display name in ${what}`);
    lt = i;
  } else {
    lt = s.indexOf('<');
    if (lt > 0) {
      // display-name = *(token LWS): anything else (RFC 4475 "baddn":
      // `Bell, Alexander <...>`) is an unquoted display name we refuse.
      const d = s.slice(0, lt);
      for (let k = 0; k < d.length; k++) {
        const c = d.charCodeAt(k);
        if (!(isWs(c) || (c < 128 && TOKEN[c] === 1) || c >= 128)) {
          throw new SipError('DP_SIP_BAD_NAME_ADDR', `Display name in ${what} must be quoted`);
        }
      }
      const trimmed = d.trim();
      display = trimmed.length > 0 ? trimmed.replace(/\s+/g, ' ') : undefined;
    }
  }
  let uriText: string;
  let rest: number;
  const bracketed = lt >= 0;
  if (bracketed) {
    const gt = s.indexOf('>', lt + 1);
    if (gt < 0) throw new SipError('DP_SIP_BAD_NAME_ADDR', `Unterminated < in ${what}`);
    uriText = s.slice(lt + 1, gt);
    // RFC 4475 §3.1.2.14 "badaspec": no LWS inside the brackets.
    if (uriText.length === 0 || isWs(uriText.charCodeAt(0)) || isWs(uriText.charCodeAt(uriText.length - 1))) {
      throw new SipError('DP_SIP_BAD_NAME_ADDR', `Whitespace inside <> in ${what}`);
    }
    rest = gt + 1;
  } else {
    let end = 0;
    while (end < s.length && s.charCodeAt(end) !== 0x3b && !isWs(s.charCodeAt(end))) end++;
    uriText = s.slice(0, end);
    // addr-spec without brackets cannot carry '?' headers or ',' (§20.10, RFC 4475 "regbadct").
    if (/[?,]/.test(uriText)) throw new SipError('DP_SIP_BAD_NAME_ADDR', `URI with headers or commas must be in <> in ${what}`);
    rest = end;
  }
  let uri: SipUri;
  try {
    uri = parseUri(uriText);
  } catch (e) {
    if (e instanceof SipError) throw new SipError('DP_SIP_BAD_NAME_ADDR', `${e.reason} in ${what}`);
    throw e;
  }
  const params = parseGenericParams(s, rest, 'DP_SIP_BAD_NAME_ADDR', what);
  return new NameAddr(uri, display, params, bracketed);
}
