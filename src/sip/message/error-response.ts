/**
 * A response built from the raw header rows of a request we could not fully
 * parse, so that a malformed request still gets its 400 (RFC 3261 §8.2.6.2:
 * copy Via, From, To, Call-ID, CSeq; add a To tag).
 */
import { randomBytes } from 'node:crypto';
import { SipResponse, type HeaderField } from './message.js';

const COPIED = new Set(['via', 'from', 'to', 'call-id', 'cseq']);

export function errorResponseFromHeaders(headers: readonly HeaderField[], status: number, reason: string, extra: Array<[string, string]> = []): SipResponse {
  const out: HeaderField[] = [];
  for (const h of headers) {
    if (!COPIED.has(h.name)) continue;
    if (h.name === 'to' && !/;\s*tag=/i.test(h.value)) out.push({ name: 'to', value: `${h.value};tag=${randomBytes(6).toString('hex')}` });
    else out.push({ name: h.name, value: h.value });
  }
  for (const [n, v] of extra) out.push({ name: n.toLowerCase(), value: v });
  // Reason phrases are ours, but keep them to one clean line whatever the caller passed.
  return new SipResponse(status, reason.replace(/[\r\n]+/g, ' '), out);
}
