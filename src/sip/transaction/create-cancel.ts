/**
 * Builds the CANCEL for a request a client transaction sent (RFC 3261 §9.1),
 * for a UAC or a proxy cancelling its branches (§16.10). The result goes out
 * through its own non-INVITE client transaction (same branch, method CANCEL).
 */
import { SipRequest, type HeaderField } from '../message/message.js';
import { TransactionError } from './transaction-error.js';

export function createCancel(req: SipRequest): SipRequest {
  // A client transaction releases its request once a final response came
  // (SipRequest.released(): no rows). §9.1: "If the original request has
  // generated a final response, the CANCEL SHOULD NOT be sent, as it is an
  // effective no-op".
  if (req.headers.length === 0) {
    throw new TransactionError('DP_SIP_TX_NOTHING_TO_CANCEL', 'The request was released after its final response: nothing is left to cancel');
  }
  const headers: HeaderField[] = [];
  // "A CANCEL constructed by a client MUST have only a single Via header field
  // value matching the top Via value in the request being cancelled."
  const via = req.getAll('via')[0];
  if (via !== undefined) headers.push({ name: 'via', value: via });
  // "If the request being cancelled contains a Route header field, the CANCEL
  // request MUST include that Route header field's values."
  for (const h of req.headers) if (h.name === 'route') headers.push({ name: 'route', value: h.value });
  headers.push({ name: 'max-forwards', value: String(req.maxForwards ?? 70) });
  // "The Request-URI, Call-ID, To, the numeric part of CSeq, and From header
  // fields in the CANCEL request MUST be identical to those in the request
  // being cancelled, including tags."
  for (const name of ['from', 'to', 'call-id']) {
    const v = req.get(name);
    if (v !== undefined) headers.push({ name, value: v });
  }
  // Same number, method CANCEL (§8.1.1.5: the CSeq method "MUST match that of the request").
  headers.push({ name: 'cseq', value: `${req.cseq.seq} CANCEL` });
  return new SipRequest('CANCEL', req.uri, headers);
}
