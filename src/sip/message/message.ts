/**
 * SIP request and response objects. The header list is the source of truth
 * for what goes back on the wire; parsed views (Via list, CSeq, From/To...)
 * are computed on demand and cached until the header they come from changes.
 * Via, Route and Record-Route hold one value per entry (split at parse time)
 * because proxies push and pop single values (RFC 3261 §16.6, §16.7).
 */
import { SipError } from './errors.js';
import { displayName, canonicalName } from './header-names.js';
import { splitCommaList } from './grammar.js';
import { NameAddr, parseNameAddr } from './name-addr.js';
import { parseUri, SipUri } from './uri.js';
import { Via, parseVia } from './via.js';

export interface HeaderField {
  /** Lower-case long name (compact forms expanded). */
  readonly name: string;
  readonly value: string;
  /** Name as received, kept for headers we do not know so they are forwarded as written. */
  readonly wireName?: string;
}

export interface CSeq {
  readonly seq: number;
  readonly method: string;
}

export type TransportName = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';

/** Where a message came from; set by the transport layer. */
export interface MessageSource {
  readonly transport: TransportName;
  readonly address: string;
  readonly port: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Set for connection-oriented transports. */
  readonly connectionId?: string;
}

export const KNOWN_METHODS = new Set([
  'INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'REGISTER', 'PRACK', 'SUBSCRIBE', 'NOTIFY',
  'PUBLISH', 'INFO', 'REFER', 'MESSAGE', 'UPDATE',
]);

export abstract class SipMessage {
  headers: HeaderField[];
  body: Buffer;
  source: MessageSource | undefined;
  private viaCache: Via[] | undefined;
  private topViaCache: Via | undefined;
  private fromCache: NameAddr | undefined;
  private toCache: NameAddr | undefined;
  private cseqCache: CSeq | undefined;
  /**
   * The exact bytes of a kept message as a one-byte (latin1) string: see
   * SipResponse.retransmittable(). Any header change drops it.
   */
  protected wire: string | undefined;

  protected constructor(headers: HeaderField[], body: Buffer) {
    this.headers = headers;
    this.body = body;
  }

  abstract get isRequest(): boolean;
  abstract startLine(): string;

  get(name: string): string | undefined {
    const n = canonicalName(name);
    for (const h of this.headers) if (h.name === n) return h.value;
    return undefined;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** Every entry of the header, as separate rows were received (Via/Route/Record-Route already one value per row). */
  getAll(name: string): string[] {
    const n = canonicalName(name);
    const out: string[] = [];
    for (const h of this.headers) if (h.name === n) out.push(h.value);
    return out;
  }

  /** Every value of a comma-list header, across rows. */
  getList(name: string): string[] {
    const out: string[] = [];
    for (const v of this.getAll(name)) for (const e of splitCommaList(v)) if (e.length > 0) out.push(e);
    return out;
  }

  /** Replaces every row of `name` with one row holding `value`, at the position of the first. */
  set(name: string, value: string): this {
    const n = canonicalName(name);
    const idx = this.headers.findIndex((h) => h.name === n);
    const field = { name: n, value };
    if (idx < 0) {
      this.headers.push(field);
    } else {
      // In place (the proxy sets Max-Forwards on every forwarded request):
      // the array is the message's own (clone() copies it), and three
      // temporary arrays per call were measurable.
      const hs = this.headers;
      hs[idx] = field;
      let w = idx + 1;
      for (let r = idx + 1; r < hs.length; r++) {
        const h = hs[r];
        if (h !== undefined && h.name !== n) hs[w++] = h;
      }
      hs.length = w;
    }
    this.invalidate(n);
    return this;
  }

  append(name: string, value: string): this {
    const n = canonicalName(name);
    this.headers.push({ name: n, value });
    this.invalidate(n);
    return this;
  }

  /** Inserts before the first row of the same header, or at the top. */
  prepend(name: string, value: string): this {
    const n = canonicalName(name);
    const idx = this.headers.findIndex((h) => h.name === n);
    this.headers.splice(idx < 0 ? 0 : idx, 0, { name: n, value });
    this.invalidate(n);
    return this;
  }

  remove(name: string): this {
    const n = canonicalName(name);
    this.headers = this.headers.filter((h) => h.name !== n);
    this.invalidate(n);
    return this;
  }

  /** Removes and returns the first row of a header. */
  removeFirst(name: string): string | undefined {
    const n = canonicalName(name);
    const idx = this.headers.findIndex((h) => h.name === n);
    if (idx < 0) return undefined;
    const [h] = this.headers.splice(idx, 1);
    this.invalidate(n);
    return h?.value;
  }

  /**
   * Replaces the first Via row with `via` (serialised), keeping the parsed
   * views current instead of dropping them: the transport stamps
   * received/rport on every request it receives (§18.2.1), and the
   * transaction layer and the proxy's loop check read the Vias right after;
   * removeFirst()+prepend() made them parse every Via again.
   */
  replaceTopVia(via: Via): this {
    const idx = this.headers.findIndex((h) => h.name === 'via');
    const field = { name: 'via', value: via.toString() };
    if (idx < 0) this.headers.unshift(field);
    else this.headers[idx] = field;
    if (this.viaCache && idx >= 0) {
      const vias = this.viaCache.slice();
      vias[0] = via;
      this.viaCache = vias;
    } else {
      this.viaCache = undefined;
    }
    this.topViaCache = via;
    return this;
  }

  private invalidate(n: string): void {
    this.wire = undefined;
    if (n === 'via') { this.viaCache = undefined; this.topViaCache = undefined; }
    else if (n === 'from') this.fromCache = undefined;
    else if (n === 'to') this.toCache = undefined;
    else if (n === 'cseq') this.cseqCache = undefined;
  }

  get vias(): Via[] {
    if (!this.viaCache) this.viaCache = this.getAll('via').map(parseVia);
    return this.viaCache;
  }

  /** The first Via, parsed on its own: matching and routing need only this one. */
  get topVia(): Via {
    if (this.viaCache) {
      const v = this.viaCache[0];
      if (!v) throw new SipError('DP_SIP_MISSING_HEADER', 'Missing Via header');
      return v;
    }
    if (!this.topViaCache) {
      const raw = this.get('via');
      if (raw === undefined) throw new SipError('DP_SIP_MISSING_HEADER', 'Missing Via header');
      this.topViaCache = parseVia(raw);
    }
    return this.topViaCache;
  }

  get callId(): string {
    const v = this.get('call-id');
    if (v === undefined) throw new SipError('DP_SIP_MISSING_HEADER', 'Missing Call-ID header');
    return v;
  }

  get cseq(): CSeq {
    if (!this.cseqCache) {
      const v = this.get('cseq');
      if (v === undefined) throw new SipError('DP_SIP_MISSING_HEADER', 'Missing CSeq header');
      this.cseqCache = parseCSeq(v);
    }
    return this.cseqCache;
  }

  get from(): NameAddr {
    if (!this.fromCache) {
      const v = this.get('from');
      if (v === undefined) throw new SipError('DP_SIP_MISSING_HEADER', 'Missing From header');
      this.fromCache = parseNameAddr(v, 'From');
    }
    return this.fromCache;
  }

  get to(): NameAddr {
    if (!this.toCache) {
      const v = this.get('to');
      if (v === undefined) throw new SipError('DP_SIP_MISSING_HEADER', 'Missing To header');
      this.toCache = parseNameAddr(v, 'To');
    }
    return this.toCache;
  }

  /**
   * Drops the parsed views (Via list, From, To). A transaction calls this when
   * it enters a long wait state: the message may still be serialised or
   * re-read (views are rebuilt on demand), but a retained message then costs
   * its header rows only.
   */
  compact(): void {
    this.viaCache = undefined;
    this.topViaCache = undefined;
    this.fromCache = undefined;
    this.toCache = undefined;
  }

  /**
   * The header rows named (the first row of each), each value copied into a
   * string of its own: see skeleton().
   */
  protected keptRows(names: readonly string[]): HeaderField[] {
    // Sized up front: an array grown by push() reserves 17 slots at once,
    // 150 bytes per skeleton for its one or two rows.
    const rows = new Array<HeaderField>(names.length);
    let kept = 0;
    for (const n of names) {
      const v = this.get(n);
      if (v !== undefined) rows[kept++] = { name: canonicalName(n), value: ownString(v) };
    }
    rows.length = kept;
    return rows;
  }

  /** Serialises the message; Content-Length is always computed from the body. */
  toBuffer(): Buffer {
    if (this.wire !== undefined) return Buffer.from(this.wire, 'latin1');
    let head = this.startLine() + '\r\n';
    for (const h of this.headers) {
      if (h.name === 'content-length') continue;
      head += `${h.wireName ?? displayName(h.name)}: ${h.value}\r\n`;
    }
    head += `Content-Length: ${this.body.length}\r\n\r\n`;
    if (this.body.length === 0) return Buffer.from(head, 'utf8');
    // One buffer of the final size, head written and body copied into it:
    // Buffer.concat() of Buffer.from(head) allocated and copied the head twice.
    const headLength = Buffer.byteLength(head, 'utf8');
    const out = Buffer.allocUnsafe(headLength + this.body.length);
    out.write(head, 0, 'utf8');
    this.body.copy(out, headLength);
    return out;
  }

  toString(): string {
    return this.toBuffer().toString('utf8');
  }
}

export class SipRequest extends SipMessage {
  method: string;
  uri: SipUri;

  constructor(method: string, uri: SipUri, headers: HeaderField[] = [], body: Buffer = EMPTY) {
    super(headers, body);
    this.method = method;
    this.uri = uri;
  }

  get isRequest(): true {
    return true;
  }

  startLine(): string {
    return `${this.method} ${this.uri.toString()} SIP/2.0`;
  }

  /** Max-Forwards value, or undefined when absent. */
  get maxForwards(): number | undefined {
    const v = this.get('max-forwards');
    return v === undefined ? undefined : parseMaxForwards(v);
  }

  /**
   * What a transaction keeps of a request it no longer needs (a wait state,
   * RFC 3261 §17 Timers D, I, J, K, L, M, up to 64*T1): one shared object
   * per method, without header rows, no body and a placeholder Request-URI.
   * A parsed message's values are slices of its whole text and its body a
   * view of its datagram, so one kept value pins everything; and skeletons
   * with copied rows (message, row list, rows, values, source: some ten
   * objects) were still a third of what was alive at a thousand calls a
   * second and most of what each scavenge copied twice. The row list is
   * frozen: changing a shared request is a bug, and throws.
   */
  static released(method: string): SipRequest {
    let r = RELEASED_REQUESTS.get(method);
    if (r === undefined) {
      r = new SipRequest(method, RELEASED_URI, Object.freeze([]) as unknown as HeaderField[]);
      if (RELEASED_REQUESTS.size < 64) RELEASED_REQUESTS.set(method, r);
    }
    return r;
  }

  /** A copy sharing the body (which is never mutated in place). §16.6 step 1: "Make a copy of the received request". */
  clone(): SipRequest {
    const r = new SipRequest(this.method, this.uri, this.headers.slice(), this.body);
    r.source = this.source;
    return r;
  }
}

export class SipResponse extends SipMessage {
  status: number;
  reason: string;

  constructor(status: number, reason: string, headers: HeaderField[] = [], body: Buffer = EMPTY) {
    super(headers, body);
    this.status = status;
    this.reason = reason;
  }

  get isRequest(): false {
    return false;
  }

  startLine(): string {
    return `SIP/2.0 ${this.status} ${this.reason}`;
  }

  /**
   * Status and reason, the named rows copied (each value a string of its
   * own), no body: what an INVITE server transaction keeps of a final
   * response it may resend or match an RFC 2543 ACK against.
   */
  skeleton(names: readonly string[]): SipResponse {
    const r = new SipResponse(this.status, this.reason, this.keptRows(names));
    r.source = this.source;
    return r;
  }

  /** See SipRequest.released(): one shared response per status code, no rows, reason phrase empty. */
  static released(status: number): SipResponse {
    let r = RELEASED_RESPONSES[status];
    if (r === undefined) {
      r = new SipResponse(status, '', Object.freeze([]) as unknown as HeaderField[]);
      if (Number.isInteger(status) && status >= 100 && status <= 699) RELEASED_RESPONSES[status] = r;
    }
    return r;
  }

  /**
   * What a server transaction keeps of a final response it may have to send
   * again (a NIST in "Completed" for Timer J, 64*T1 over UDP; an IST in
   * "Completed" until the ACK): the named rows (the top Via routes a
   * retransmission, §18.2.2) and the bytes sent, as a string of one byte
   * per character that toBuffer() turns back into exactly those bytes.
   * The parsed response itself (header rows slicing its whole received
   * text) was, per call, the largest object promoted to the old generation.
   */
  retransmittable(names: readonly string[], sent: Buffer): SipResponse {
    const r = this.skeleton(names);
    r.wire = sent.toString('latin1');
    return r;
  }

  clone(): SipResponse {
    const r = new SipResponse(this.status, this.reason, this.headers.slice(), this.body);
    r.source = this.source;
    return r;
  }
}

export type SipMessageAny = SipRequest | SipResponse;

export const EMPTY = Buffer.alloc(0);

/** Request-URI of SipRequest.released(): the real one is not kept. */
const RELEASED_URI = parseUri('sip:released.invalid');
/** SipRequest.released() by method (the known ones, and a bounded number of extension methods). */
const RELEASED_REQUESTS = new Map<string, SipRequest>();
/** SipResponse.released() by status code. */
const RELEASED_RESPONSES: Array<SipResponse | undefined> = [];

/**
 * A copy of `s` that refers to no larger string. V8 keeps a slice of a
 * string as a reference into it; concatenating first makes it flatten
 * into a new string, of which the result is a part.
 */
export function ownString(s: string): string {
  return (' ' + s).slice(1);
}

/**
 * CSeq = 1*DIGIT LWS Method; "MUST be less than 2**31" (§8.1.1.5). Read by
 * hand (a regular expression's match array and captures were 1.8 KB per
 * call), and the usual methods are returned as the constant strings below
 * rather than new slices.
 */
export function parseCSeq(v: string): CSeq {
  const n = v.length;
  let i = 0;
  while (i < n && isLws(v.charCodeAt(i))) i++;
  const digits = i;
  let seq = 0;
  while (i < n) {
    const c = v.charCodeAt(i);
    if (c < 0x30 || c > 0x39) break;
    seq = seq * 10 + (c - 0x30);
    i++;
  }
  if (i === digits || i - digits > 12 || i === n || !isLws(v.charCodeAt(i))) throw new SipError('DP_SIP_BAD_CSEQ', 'Malformed CSeq header');
  while (i < n && isLws(v.charCodeAt(i))) i++;
  const mStart = i;
  while (i < n && !isLws(v.charCodeAt(i))) i++;
  const mEnd = i;
  while (i < n && isLws(v.charCodeAt(i))) i++;
  if (mEnd === mStart || i !== n) throw new SipError('DP_SIP_BAD_CSEQ', 'Malformed CSeq header');
  if (seq >= 2 ** 31) throw new SipError('DP_SIP_BAD_CSEQ', 'CSeq number out of range');
  return { seq, method: knownMethod(v, mStart, mEnd) ?? v.slice(mStart, mEnd) };
}

/** Whitespace as the old /\s/ saw it in a header value (SP, HTAB, and the CR/LF of folding). */
function isLws(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

const METHOD_NAMES = [...KNOWN_METHODS];

/** The constant method name spelt by v[start, end), if it is one of KNOWN_METHODS (case-sensitive, §7.1). */
export function knownMethod(v: string, start: number, end: number): string | undefined {
  const len = end - start;
  for (const m of METHOD_NAMES) {
    if (m.length !== len) continue;
    let k = 0;
    while (k < len && v.charCodeAt(start + k) === m.charCodeAt(k)) k++;
    if (k === len) return m;
  }
  return undefined;
}

export function parseMaxForwards(v: string): number {
  const t = v.trim();
  if (!/^[0-9]{1,10}$/.test(t)) throw new SipError('DP_SIP_BAD_HEADER', 'Malformed Max-Forwards header');
  const n = Number(t);
  if (n >= 2 ** 31) throw new SipError('DP_SIP_BAD_HEADER', 'Max-Forwards out of range');
  return n;
}
