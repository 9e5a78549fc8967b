/**
 * Coded errors of the store layer (DESIGN.md §3: errors carry a code). They
 * signal bugs in the caller or in the backend, never an ordinary outcome: a
 * lost compare-and-set is `false`, an unreachable Redis is the client's own
 * connection error.
 */
export type StoreErrorCode =
  /** A binding handed to `put` is not well-formed (bad q, CSeq, expiry...). */
  | 'DP_STORE_BAD_BINDING'
  /** An AOR that cannot be stored faithfully (not valid Unicode). */
  | 'DP_STORE_BAD_AOR'
  /** The backend answered something the store never produces. */
  | 'DP_STORE_BAD_REPLY';

export class StoreError extends Error {
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string) {
    super(message);
    this.name = 'StoreError';
    this.code = code;
  }
}
