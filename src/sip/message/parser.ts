/**
 * SIP message parser (RFC 3261 §7, §18.3, §25). Strict where the RFC is and
 * where RFC 4475 says a message must be refused; liberal where RFC 4475 asks
 * for robustness (folding, compact names, LWS around separators, leading
 * zeros, unknown headers and parameters).
 *
 * Eagerly validated: start line, Via (all values), CSeq, Call-ID, From, To,
 * Max-Forwards, Content-Length — every element needs them to match
 * transactions or to answer at all. Everything else is parsed on demand.
 */
import { SipError } from './errors.js';
import { SINGLE_VALUED, SPLIT_AT_PARSE, canonicalName } from './header-names.js';
import { TOKEN, WORD, isWs, splitCommaList } from './grammar.js';
import { EMPTY, KNOWN_METHODS, SipRequest, SipResponse, type HeaderField, knownMethod, parseMaxForwards } from './message.js';
import { parseNameAddr } from './name-addr.js';
import { parseUri } from './uri.js';

export type ParseOutcome =
  | { kind: 'request'; message: SipRequest }
  | { kind: 'response'; message: SipResponse }
  | ParseFailure;

export interface ParseFailure {
  kind: 'error';
  error: SipError;
  /** True when the start line looked like a request: only requests are ever answered. */
  isRequest: boolean;
  /** The headers read before the failure, for a stateless error response. */
  headers: HeaderField[];
}

export interface ParseOptions {
  /**
   * Stream transports (TCP/TLS, and WebSocket frames) deliver exactly one
   * framed message; datagrams may carry a body shorter than the datagram.
   */
  stream: boolean;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const LFLF = Buffer.from('\n\n');

/** Finds the end of the header block: index of the blank line, and where the body starts. */
export function findHeaderEnd(buf: Buffer, from = 0): { headEnd: number; bodyStart: number } | undefined {
  const i = buf.indexOf(CRLFCRLF, from);
  if (i >= 0) return { headEnd: i, bodyStart: i + 4 };
  const j = buf.indexOf(LFLF, from);
  if (j >= 0) return { headEnd: j, bodyStart: j + 2 };
  return undefined;
}

export function parseMessage(buf: Buffer, opts: ParseOptions): ParseOutcome {
  const headers: HeaderField[] = [];
  let isRequest = false;
  try {
    let start = 0;
    // §7.5: "Implementations processing SIP messages over stream-oriented
    // transports MUST ignore any CRLF appearing before the start-line".
    while (start < buf.length && (buf[start] === 0x0d || buf[start] === 0x0a)) start++;
    const end = findHeaderEnd(buf, start);
    // A datagram without the blank line (RFC 4475 "baddn") ends its headers at its end.
    const headEnd = end ? end.headEnd : buf.length;
    const bodyStart = end ? end.bodyStart : buf.length;
    const head = buf.toString('utf8', start, headEnd);
    // The head is walked line by line with indexOf instead of split('\n'):
    // header names and values are sliced straight out of it.
    const firstEnd = head.indexOf('\n');
    const first = stripCr(firstEnd < 0 ? head : head.slice(0, firstEnd));
    isRequest = !first.startsWith('SIP/');
    // A bad start line still gets its headers read, so that the 400/505 can
    // be addressed (Via, From, To, Call-ID, CSeq are copied into it).
    let startLine: StartLine | undefined;
    let startError: SipError | undefined;
    try {
      startLine = isRequest ? parseRequestLine(first) : parseStatusLine(first);
    } catch (e) {
      if (!(e instanceof SipError)) throw e;
      startError = e;
    }
    const duplicate = readHeaders(head, firstEnd < 0 ? head.length : firstEnd + 1, headers);
    if (startError || !startLine) throw startError ?? new SipError('DP_SIP_BAD_START_LINE', 'Malformed start line');
    if (duplicate !== undefined) throw new SipError('DP_SIP_DUPLICATE_HEADER', `Multiple ${duplicate} headers`);

    // Content-Length framing (§18.3, §20.14).
    const cl = findOne(headers, 'content-length');
    let body: Buffer;
    const available = buf.length - bodyStart;
    if (cl !== undefined) {
      const t = cl.trim();
      if (!/^[0-9]{1,10}$/.test(t)) throw new SipError('DP_SIP_BAD_CONTENT_LENGTH', 'Malformed Content-Length');
      const n = Number(t);
      // "If the transport is UDP ... If the Content-Length is larger than the
      //  message body ... the message MUST be discarded / answered 400" (§18.3, RFC 4475 clerr)
      if (n > available) throw new SipError('DP_SIP_BAD_CONTENT_LENGTH', 'Content-Length larger than body');
      // "... and any data beyond the Content-Length is to be ignored" (dblreq)
      body = buf.subarray(bodyStart, bodyStart + n);
    } else {
      // "In the case of stream-oriented transports such as TCP, the
      //  Content-Length header field indicates the size of the body ... MUST
      //  be used" — framers guarantee it; datagrams take the rest (RFC 2543 compat, inv2543).
      if (opts.stream && available > 0) throw new SipError('DP_SIP_BAD_CONTENT_LENGTH', 'Missing Content-Length on stream transport');
      body = buf.subarray(bodyStart);
    }
    // Copy out of a stream buffer (or any view into a larger backing store)
    // so that a kept message does not pin it. A UDP datagram arrives in a
    // buffer of exactly its size: its body is kept as a view, because a
    // copy would come from Buffer's shared 8 KiB pool, and one body kept by
    // a transaction for 32 s then pinned a whole pool slab (≈6 KB per call
    // measured in a heap snapshot) besides costing an allocation and a copy.
    if (body.length > 0 && buf.buffer.byteLength > buf.length) body = Buffer.from(body);
    // An empty view would still pin the whole datagram for as long as the message is kept.
    if (body.length === 0) body = EMPTY;

    const msg = startLine.kind === 'request'
      ? new SipRequest(startLine.method, startLine.uri, headers, body)
      : new SipResponse(startLine.status, startLine.reason, headers, body);
    validateCore(msg);
    if (msg instanceof SipRequest) return { kind: 'request', message: msg };
    return { kind: 'response', message: msg };
  } catch (e) {
    if (e instanceof SipError) return { kind: 'error', error: e, isRequest, headers };
    // A bug in a parser must never take a transport down; report it as a 400.
    return { kind: 'error', error: new SipError('DP_SIP_BAD_HEADER', 'Unparseable message'), isRequest, headers };
  }
}

function stripCr(s: string): string {
  return s.charCodeAt(s.length - 1) === 0x0d ? s.slice(0, -1) : s;
}

type StartLine =
  | { kind: 'request'; method: string; uri: ReturnType<typeof parseUri> }
  | { kind: 'response'; status: number; reason: string };

/**
 * Request-Line = Method SP Request-URI SP SIP-Version CRLF
 * "The elements are separated by single space (SP) characters" (§7.1): extra
 * or trailing whitespace is refused (RFC 4475 lwsstart, trws, lwsruri), and so
 * is a Request-URI in < > (ltgtruri).
 */
function parseRequestLine(line: string): StartLine {
  // Three parts separated by single spaces, found with indexOf (no split array).
  const sp1 = line.indexOf(' ');
  const sp2 = sp1 < 0 ? -1 : line.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || line.indexOf(' ', sp2 + 1) >= 0) throw new SipError('DP_SIP_BAD_START_LINE', 'Malformed Request-Line');
  for (let i = 0; i < sp1; i++) {
    const c = line.charCodeAt(i);
    if (c > 127 || TOKEN[c] !== 1) throw new SipError('DP_SIP_BAD_START_LINE', 'Malformed method');
  }
  if (sp2 === sp1 + 1) throw new SipError('DP_SIP_BAD_START_LINE', 'Malformed Request-Line');
  checkVersion(line, sp2 + 1, line.length);
  const method = knownMethod(line, 0, sp1) ?? line.slice(0, sp1);
  const uriText = line.slice(sp1 + 1, sp2);
  if (uriText.charCodeAt(0) === 0x3c) throw new SipError('DP_SIP_BAD_URI', 'Request-URI must not be enclosed in <>');
  let uri;
  try {
    uri = parseUri(uriText);
  } catch (e) {
    if (e instanceof SipError) throw new SipError('DP_SIP_BAD_URI', `Bad Request-URI: ${e.reason}`);
    throw e;
  }
  return { kind: 'request', method, uri };
}

/** "The SIP-Version string is case-insensitive, but implementations MUST send upper-case." (§7.1) */
function checkVersion(line: string, start: number, end: number): void {
  // The common case without a slice or a regular expression.
  if (end - start === 7 && line.startsWith('SIP/2.0', start)) return;
  const m = /^SIP\/([0-9]+)\.([0-9]+)$/i.exec(line.slice(start, end));
  if (!m) throw new SipError('DP_SIP_BAD_START_LINE', 'Malformed SIP-Version');
  if (Number(m[1]) !== 2 || Number(m[2]) !== 0) throw new SipError('DP_SIP_BAD_VERSION', 'Version Not Supported', 505);
}

/** Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF; Status-Code = 3DIGIT */
function parseStatusLine(line: string): StartLine {
  const sp1 = line.indexOf(' ');
  if (sp1 < 0) throw new SipError('DP_SIP_BAD_STATUS', 'Malformed Status-Line');
  checkVersion(line, 0, sp1);
  const sp2 = line.indexOf(' ', sp1 + 1);
  const codeEnd = sp2 < 0 ? line.length : sp2;
  const c0 = line.charCodeAt(sp1 + 1);
  const c1 = line.charCodeAt(sp1 + 2);
  const c2 = line.charCodeAt(sp1 + 3);
  if (codeEnd - sp1 !== 4 || c0 < 0x31 || c0 > 0x36 || !isDigit(c1) || !isDigit(c2)) throw new SipError('DP_SIP_BAD_STATUS', 'Bad Status-Code');
  const status = (c0 - 0x30) * 100 + (c1 - 0x30) * 10 + (c2 - 0x30);
  return { kind: 'response', status, reason: sp2 < 0 ? '' : line.slice(sp2 + 1) };
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * message-header lines with folding (§7.3.1: "extended over multiple lines by
 * preceding each extra line with at least one SP or horizontal tab"), read
 * from `head` starting at `from` into `out`. Returns the first single-valued
 * header seen twice, if any: the caller reports it only once the start line
 * is known to be good, as before (a bad start line is the first complaint).
 */
function readHeaders(head: string, from: number, out: HeaderField[]): string | undefined {
  let pendingName: string | undefined;
  let pendingKnown: KnownHeader | undefined;
  let pendingWire: string | undefined;
  let pendingValue = '';
  let seen = 0;
  let duplicate: string | undefined;
  let pos = from;
  const n = head.length;
  for (;;) {
    // One iteration per line, plus one after the last to flush the pending header.
    let lineStart = -1;
    let end = 0;
    if (pos < n) {
      let nl = head.indexOf('\n', pos);
      if (nl < 0) nl = n;
      lineStart = pos;
      end = nl;
      if (end > lineStart && head.charCodeAt(end - 1) === 0x0d) end--;
      pos = nl + 1;
      if (end === lineStart) continue;
      if (isWs(head.charCodeAt(lineStart))) {
        if (pendingName === undefined) throw new SipError('DP_SIP_BAD_HEADER', 'Continuation line without a header');
        // §7.3.1 folding: the continuation joins the value with a single SP.
        const folded = head.slice(lineStart, end).trim();
        if (folded.length > 0) pendingValue = pendingValue.length > 0 ? `${pendingValue} ${folded}` : folded;
        continue;
      }
    }
    if (pendingName !== undefined) {
      // Flush the header read so far (its folded continuations are in).
      const name = pendingName;
      const value = pendingValue;
      const bit = pendingKnown ? pendingKnown.singleBit : SINGLE_BITS.get(name) ?? 0;
      if (bit !== 0) {
        if ((seen & bit) !== 0) duplicate ??= name;
        seen |= bit;
      }
      const split = pendingKnown ? pendingKnown.split : SPLIT_AT_PARSE.has(name);
      if (split && value.indexOf(',') >= 0) {
        for (const v of splitCommaList(value)) {
          // RFC 4475 badinv01: empty list elements in Via are malformed.
          if (v.length === 0) throw new SipError(name === 'via' ? 'DP_SIP_BAD_VIA' : 'DP_SIP_BAD_HEADER', `Empty value in ${name} list`);
          out.push({ name, value: v });
        }
      } else {
        out.push(pendingWire === undefined ? { name, value } : { name, value, wireName: pendingWire });
      }
      // (pendingName is set again below, or we return.)
    }
    if (lineStart < 0) return duplicate;
    const colon = head.indexOf(':', lineStart);
    if (colon <= lineStart || colon >= end) throw new SipError('DP_SIP_BAD_HEADER', 'Malformed header line');
    // HCOLON = *( SP / HTAB ) ":" SWS
    let nameEnd = colon;
    while (nameEnd > lineStart && isWs(head.charCodeAt(nameEnd - 1))) nameEnd--;
    if (nameEnd === lineStart) throw new SipError('DP_SIP_BAD_HEADER', 'Empty header name');
    // The name is checked and hashed (case-insensitively) in one pass; a
    // known header is then recognised without slicing its name out and
    // looking the slice up (a fresh string hashed per header per message).
    let hash = 0;
    for (let i = lineStart; i < nameEnd; i++) {
      const c = head.charCodeAt(i);
      if (c > 127 || TOKEN[c] !== 1) throw new SipError('DP_SIP_BAD_HEADER', 'Malformed header name');
      hash = (Math.imul(hash, 31) + (c | 0x20)) | 0;
    }
    const known = nameEnd - lineStart > 1 ? findKnown(head, lineStart, nameEnd, hash) : undefined;
    if (known) {
      pendingName = known.name;
      pendingKnown = known;
      pendingWire = undefined;
    } else {
      // Compact forms and unknown headers: known headers are re-spelt
      // canonically, unknown ones keep the sender's spelling.
      const wire = head.slice(lineStart, nameEnd);
      const name = canonicalName(wire);
      pendingName = name;
      pendingKnown = undefined;
      pendingWire = isKnownSpelling(wire, name) ? undefined : wire;
    }
    let vStart = colon + 1;
    while (vStart < end && isWs(head.charCodeAt(vStart))) vStart++;
    let vEnd = end;
    while (vEnd > vStart && isWs(head.charCodeAt(vEnd - 1))) vEnd--;
    pendingValue = head.slice(vStart, vEnd);
  }
}

/** Known headers are re-spelt canonically; unknown ones keep the sender's spelling. */
function isKnownSpelling(wire: string, canonical: string): boolean {
  return wire.length === 1 || KNOWN_HEADERS.has(canonical);
}

const KNOWN_HEADERS = new Set([
  'accept', 'accept-encoding', 'accept-language', 'alert-info', 'allow', 'allow-events', 'authentication-info',
  'authorization', 'call-id', 'call-info', 'contact', 'content-disposition', 'content-encoding',
  'content-language', 'content-length', 'content-type', 'cseq', 'date', 'error-info', 'event', 'expires',
  'from', 'in-reply-to', 'max-forwards', 'min-expires', 'mime-version', 'organization', 'path', 'priority',
  'proxy-authenticate', 'proxy-authorization', 'proxy-require', 'rack', 'reason', 'record-route', 'refer-to',
  'referred-by', 'reply-to', 'require', 'retry-after', 'route', 'rseq', 'server', 'session-expires',
  'subject', 'supported', 'timestamp', 'to', 'unsupported', 'user-agent', 'via', 'warning',
  'www-authenticate', 'min-se', 'p-asserted-identity', 'p-preferred-identity', 'privacy', 'identity',
  'subscription-state', 'sip-etag', 'sip-if-match',
]);

/** A bit per single-valued header, to find repeats (RFC 4475 multi01, mcl01) without a Set per message. */
const SINGLE_BITS = new Map([...SINGLE_VALUED].map((name, i) => [name, 1 << i]));

interface KnownHeader {
  /** Lower-case long name. */
  readonly name: string;
  readonly singleBit: number;
  readonly split: boolean;
}

/** Known long names by the low bits of their case-insensitive hash (see readHeaders). */
const KNOWN_BY_HASH: KnownHeader[][] = Array.from({ length: 256 }, () => []);
for (const name of KNOWN_HEADERS) {
  let hash = 0;
  for (let i = 0; i < name.length; i++) hash = (Math.imul(hash, 31) + (name.charCodeAt(i) | 0x20)) | 0;
  KNOWN_BY_HASH[hash & 255]?.push({ name, singleBit: SINGLE_BITS.get(name) ?? 0, split: SPLIT_AT_PARSE.has(name) });
}

/**
 * The known header whose name head[start, end) spells, in any case. Names
 * hold only letters and '-', for which `| 0x20` is exact case folding; the
 * other token characters cannot collide with a letter that way.
 */
function findKnown(head: string, start: number, end: number, hash: number): KnownHeader | undefined {
  const bucket = KNOWN_BY_HASH[hash & 255];
  if (bucket === undefined) return undefined;
  const len = end - start;
  for (const k of bucket) {
    const name = k.name;
    if (name.length !== len) continue;
    let i = 0;
    while (i < len && (head.charCodeAt(start + i) | 0x20) === name.charCodeAt(i)) i++;
    if (i === len) return k;
  }
  return undefined;
}

function findOne(headers: HeaderField[], name: string): string | undefined {
  for (const h of headers) if (h.name === name) return h.value;
  return undefined;
}

function validateCore(msg: SipRequest | SipResponse): void {
  const isRequest = msg instanceof SipRequest;
  // Requests: every Via must parse, since responses will be routed back along
  // them (RFC 4475 badinv01). Responses: only the top Via matters to us (it
  // must be ours, §18.1.2); the rest are the next hops' business.
  if (isRequest) {
    if (msg.vias.length === 0) throw new SipError('DP_SIP_MISSING_HEADER', 'Missing Via header');
  } else {
    void msg.topVia;
  }
  const callId = msg.get('call-id');
  if (callId === undefined) throw new SipError('DP_SIP_MISSING_HEADER', 'Missing Call-ID header');
  checkCallId(callId);
  if (!msg.has('from')) throw new SipError('DP_SIP_MISSING_HEADER', 'Missing From header');
  if (!msg.has('to')) throw new SipError('DP_SIP_MISSING_HEADER', 'Missing To header');
  if (!msg.has('cseq')) throw new SipError('DP_SIP_MISSING_HEADER', 'Missing CSeq header');
  // From and To of requests are checked now (RFC 4475 quotbal, baddn,
  // badaspec must get their 400); a proxy only relays those of responses,
  // so they are parsed when someone asks.
  if (isRequest) {
    void msg.from;
    void msg.to;
  }
  const cseq = msg.cseq;
  if (isRequest) {
    const mf = msg.get('max-forwards');
    if (mf !== undefined) parseMaxForwards(mf);
    // "The method MUST match the method of the request" (§8.1.1.5 CSeq, RFC 4475 mismatch01/02).
    if (cseq.method !== msg.method) {
      throw KNOWN_METHODS.has(msg.method)
        ? new SipError('DP_SIP_CSEQ_MISMATCH', 'CSeq method does not match Request-Line')
        : new SipError('DP_SIP_CSEQ_MISMATCH', 'Not Implemented', 501);
    }
  }
}

/** callid = word [ "@" word ] */
function checkCallId(v: string): void {
  if (v.length === 0) throw new SipError('DP_SIP_BAD_HEADER', 'Empty Call-ID');
  let at = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0x40) {
      if (++at > 1 || i === 0 || i === v.length - 1) throw new SipError('DP_SIP_BAD_HEADER', 'Malformed Call-ID');
      continue;
    }
    if (c > 127 || WORD[c] !== 1) throw new SipError('DP_SIP_BAD_HEADER', 'Malformed Call-ID');
  }
}

/** Parses a Contact header list; "*" is returned as the string '*' (§10.2.2). */
export function parseContacts(values: string[]): Array<ReturnType<typeof parseNameAddr>> | '*' {
  const items: string[] = [];
  for (const v of values) for (const e of splitCommaList(v)) items.push(e);
  if (items.length === 1 && items[0] === '*') return '*';
  return items.map((e) => {
    if (e.length === 0) throw new SipError('DP_SIP_BAD_NAME_ADDR', 'Empty Contact value');
    if (e === '*') throw new SipError('DP_SIP_BAD_NAME_ADDR', 'Contact * must stand alone');
    return parseNameAddr(e, 'Contact');
  });
}
