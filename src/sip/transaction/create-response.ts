/**
 * Builds a response to a request per RFC 3261 §8.2.6 (used by a UAS core,
 * by a proxy for its own responses §16.7, and by the INVITE server
 * transaction for its automatic 100 Trying).
 */
import { SipResponse, type HeaderField, type SipRequest } from '../message/message.js';
import { generateTag } from './generate-tag.js';

/** Re-exported: whoever builds a response usually needs a tag too. */
export { generateTag };

export interface CreateResponseOptions {
  /** To tag to add when the request's To has none (a fresh `generateTag()` otherwise; '' counts as none). */
  toTag?: string;
}

export function createResponse(req: SipRequest, status: number, reason: string, opts: CreateResponseOptions = {}): SipResponse {
  const headers: HeaderField[] = [];
  // §8.2.6.2: "The Via header field values in the response MUST equal the Via
  // header field values in the request and MUST maintain the same ordering."
  for (const h of req.headers) if (h.name === 'via') headers.push({ name: 'via', value: h.value });
  // "The From field of the response MUST equal the From header field of the request."
  copy(req, headers, 'from');
  // "If a request contained a To tag in the request, the To header field in the
  // response MUST equal that of the request. However, if the To header field in
  // the request did not contain a tag, the URI in the To header field in the
  // response MUST equal the URI in the To header field; additionally, the UAS
  // MUST add a tag to the To header field in the response (with the exception
  // of the 100 (Trying) response, in which a tag MAY be present)."
  const to = req.get('to');
  if (to !== undefined) {
    let value = to;
    const given = opts.toTag !== undefined && opts.toTag.length > 0 ? opts.toTag : undefined;
    if (req.to.tag === undefined && (status > 100 || given !== undefined)) {
      // Appending keeps the request's spelling; header params (including a
      // bare addr-spec's) always follow the URI part, so ";tag=" lands right.
      value = `${to};tag=${given ?? generateTag()}`;
    }
    headers.push({ name: 'to', value });
  }
  // "The Call-ID header field of the response MUST equal the Call-ID header field of the request."
  copy(req, headers, 'call-id');
  // "The CSeq header field of the response MUST equal the CSeq field of the request."
  copy(req, headers, 'cseq');
  // §8.2.6.1: "When a 100 (Trying) response is generated, any Timestamp header
  // field present in the request MUST be copied into this 100 (Trying) response."
  if (status === 100) copy(req, headers, 'timestamp');
  return new SipResponse(status, reason, headers);
}

function copy(req: SipRequest, out: HeaderField[], name: string): void {
  const v = req.get(name);
  if (v !== undefined) out.push({ name, value: v });
}
