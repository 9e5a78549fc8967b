/**
 * Header names: compact forms (RFC 3261 §7.3.3 and later RFCs), canonical
 * spelling for what we send, and which headers may appear only once.
 * Internally every header is keyed by its lower-case long name.
 */
const COMPACT: Record<string, string> = {
  i: 'call-id', m: 'contact', e: 'content-encoding', l: 'content-length', c: 'content-type',
  f: 'from', s: 'subject', k: 'supported', t: 'to', v: 'via', r: 'refer-to', b: 'referred-by',
  o: 'event', u: 'allow-events', x: 'session-expires', y: 'identity', a: 'accept-contact',
  j: 'reject-contact', d: 'request-disposition',
};

const DISPLAY: Record<string, string> = {
  'call-id': 'Call-ID', cseq: 'CSeq', 'www-authenticate': 'WWW-Authenticate', 'mime-version': 'MIME-Version',
  'rack': 'RAck', 'rseq': 'RSeq', 'sip-etag': 'SIP-ETag', 'sip-if-match': 'SIP-If-Match',
  'p-asserted-identity': 'P-Asserted-Identity', 'p-preferred-identity': 'P-Preferred-Identity',
};

/** Lower-case long form of a header name as received. */
export function canonicalName(name: string): string {
  // Wire spellings repeat ("Via", "v", "CSeq"...): memoise rather than lower-case each time.
  let c = CANONICAL_CACHE.get(name);
  if (c === undefined) {
    const lower = name.toLowerCase();
    c = lower.length === 1 ? COMPACT[lower] ?? lower : lower;
    if (CANONICAL_CACHE.size < 4096) CANONICAL_CACHE.set(name, c);
  }
  return c;
}

const CANONICAL_CACHE = new Map<string, string>();

/** How we spell a header on the wire: "Content-Length", "Call-ID", "CSeq"... */
export function displayName(canonical: string): string {
  // Called for every header of every message we send: memoised, as the
  // character-by-character spelling below allocates a string per character.
  let d = DISPLAY_CACHE.get(canonical);
  if (d === undefined) {
    d = spell(canonical);
    if (DISPLAY_CACHE.size < 4096) DISPLAY_CACHE.set(canonical, d);
  }
  return d;
}

const DISPLAY_CACHE = new Map<string, string>();

function spell(canonical: string): string {
  const special = DISPLAY[canonical];
  if (special) return special;
  let out = '';
  let up = true;
  for (const ch of canonical) {
    out += up ? ch.toUpperCase() : ch;
    up = ch === '-';
  }
  return out;
}

/**
 * Headers that RFC 3261 §7.3 does not allow to repeat (their grammar is not
 * a comma list). Two of them in one message make it ambiguous which one an
 * element acted on, so the message is rejected (RFC 4475 §3.3.8 "multi01",
 * §3.3.9 "mcl01").
 */
export const SINGLE_VALUED = new Set([
  'call-id', 'cseq', 'from', 'to', 'max-forwards', 'content-length', 'content-type', 'expires',
]);

/**
 * Headers we split into one entry per value at parse time, because proxies
 * pop and push individual values (RFC 3261 §16.6, §16.7, §16.12).
 */
export const SPLIT_AT_PARSE = new Set(['via', 'route', 'record-route']);
