/**
 * Frames SIP messages out of a byte stream (TCP, TLS).
 *
 * "In the case of stream-oriented transports such as TCP, the Content-Length
 *  header field indicates the size of the body. ... if the Content-Length
 *  header field is missing, the message is malformed" (RFC 3261 §18.3, §20.14).
 * A framing error is unrecoverable on a stream (RFC 4475 ncl, mcl01: "over
 * TCP the framing error is unrecoverable: close the connection").
 *
 * Keep-alives (RFC 5626 §3.5.1): a client sends CRLFCRLF ("ping"), the server
 * answers CRLF ("pong"); a lone CRLF between messages is ignored (§7.5).
 */
import { SipError } from './errors.js';
import { findHeaderEnd } from './parser.js';

export type FramerEvent =
  | { kind: 'message'; data: Buffer }
  | { kind: 'ping' }
  | { kind: 'error'; error: SipError };

const CL_RE = /^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$/gim;

export class StreamFramer {
  private buf: Buffer = Buffer.alloc(0);
  private failed = false;

  constructor(private readonly maxMessageSize: number) {}

  /** Feeds bytes; returns complete messages, pings and at most one error (after which the stream is dead). */
  push(chunk: Buffer): FramerEvent[] {
    if (this.failed) return [];
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: FramerEvent[] = [];
    for (;;) {
      // Leading CR/LF: CRLFCRLF is a ping, anything shorter is ignored.
      let i = 0;
      while (i < this.buf.length && (this.buf[i] === 0x0d || this.buf[i] === 0x0a)) i++;
      if (i > 0) {
        if (i >= 4 && this.buf[0] === 0x0d && this.buf[1] === 0x0a && this.buf[2] === 0x0d && this.buf[3] === 0x0a) out.push({ kind: 'ping' });
        if (i === this.buf.length && i < 4) return out; // maybe an incomplete ping: wait
        this.buf = this.buf.subarray(i);
      }
      if (this.buf.length === 0) return out;
      const end = findHeaderEnd(this.buf);
      if (!end) {
        if (this.buf.length > this.maxMessageSize) return this.fail(out, new SipError('DP_SIP_TOO_LARGE', 'Message Too Large', 513));
        return out;
      }
      const head = this.buf.toString('latin1', 0, end.headEnd);
      let length: number | undefined;
      CL_RE.lastIndex = 0;
      for (let m = CL_RE.exec(head); m; m = CL_RE.exec(head)) {
        const v = m[1] ?? '';
        if (!/^[0-9]{1,10}$/.test(v)) return this.fail(out, new SipError('DP_SIP_BAD_CONTENT_LENGTH', 'Malformed Content-Length'));
        if (length !== undefined) return this.fail(out, new SipError('DP_SIP_DUPLICATE_HEADER', 'Multiple content-length headers'));
        length = Number(v);
      }
      if (length === undefined) return this.fail(out, new SipError('DP_SIP_BAD_CONTENT_LENGTH', 'Missing Content-Length on stream transport'));
      const total = end.bodyStart + length;
      if (total > this.maxMessageSize) return this.fail(out, new SipError('DP_SIP_TOO_LARGE', 'Message Too Large', 513));
      if (this.buf.length < total) return out;
      out.push({ kind: 'message', data: this.buf.subarray(0, total) });
      this.buf = this.buf.subarray(total);
    }
  }

  private fail(out: FramerEvent[], error: SipError): FramerEvent[] {
    this.failed = true;
    this.buf = Buffer.alloc(0);
    out.push({ kind: 'error', error });
    return out;
  }
}
