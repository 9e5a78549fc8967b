/**
 * Misuse of the transaction layer by a TU (a programming error, never a
 * network condition): thrown synchronously from `TransactionLayer.sendRequest`,
 * `sendAck` and `createCancel`.
 * Nothing received from the network ever produces one of these.
 */
export type TransactionErrorCode =
  /** "The ACK MUST NOT be sent through a client transaction" for 2xx (§17.1.1.3, §13.2.2.4): use `sendAck`. */
  | 'DP_SIP_TX_ACK_NOT_A_TRANSACTION'
  /** The top Via has no branch starting with the magic cookie (§8.1.1.7). */
  | 'DP_SIP_TX_BAD_BRANCH'
  /** The CSeq method differs from the request method, so no response could match (§17.1.3). */
  | 'DP_SIP_TX_CSEQ_MISMATCH'
  /** A client transaction with this branch and method already exists. */
  | 'DP_SIP_TX_DUPLICATE'
  /** `sendAck` was given a request that is not an ACK. */
  | 'DP_SIP_TX_NOT_ACK'
  /** `createCancel` was given a request its transaction released after a final response: §9.1, nothing is left to cancel. */
  | 'DP_SIP_TX_NOTHING_TO_CANCEL';

export class TransactionError extends Error {
  readonly code: TransactionErrorCode;

  constructor(code: TransactionErrorCode, message: string) {
    super(message);
    this.name = 'TransactionError';
    this.code = code;
  }
}
