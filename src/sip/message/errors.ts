/**
 * One error type for the SIP layer that *is* a SIP status: code for logs and
 * tests, status + reason for the response a peer gets. Modelled on
 * drachtio's SipError and fastify's coded errors (DESIGN.md §3).
 */
export type SipErrorCode =
  | 'DP_SIP_BAD_START_LINE'
  | 'DP_SIP_BAD_VERSION'
  | 'DP_SIP_BAD_HEADER'
  | 'DP_SIP_BAD_VIA'
  | 'DP_SIP_BAD_URI'
  | 'DP_SIP_BAD_NAME_ADDR'
  | 'DP_SIP_BAD_CSEQ'
  | 'DP_SIP_BAD_CONTENT_LENGTH'
  | 'DP_SIP_MISSING_HEADER'
  | 'DP_SIP_DUPLICATE_HEADER'
  | 'DP_SIP_CSEQ_MISMATCH'
  | 'DP_SIP_TOO_LARGE'
  | 'DP_SIP_BAD_STATUS'
  | 'DP_SIP_BAD_PARAM';

export class SipError extends Error {
  readonly code: SipErrorCode;
  /** Status to answer a request with (never used for responses, which are dropped). */
  readonly status: number;
  /** Reason phrase naming the problem; safe to send to the peer. */
  readonly reason: string;

  constructor(code: SipErrorCode, reason: string, status = 400) {
    super(reason);
    this.name = 'SipError';
    this.code = code;
    this.status = status;
    this.reason = reason;
  }
}
