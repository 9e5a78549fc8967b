/**
 * Coded errors of the CDR, report and webhook modules (DESIGN.md §3). Each
 * is a bad argument from a caller (the admin API turns them into 400s),
 * never an ordinary outcome.
 */
export type CdrErrorCode =
  /** A time zone Intl does not know (reports, CSV timestamps). */
  | 'DP_CDR_BAD_TIME_ZONE'
  /** A report or export option out of range (bucket, top, maxRows). */
  | 'DP_CDR_BAD_OPTION';

export class CdrError extends Error {
  readonly code: CdrErrorCode;

  constructor(code: CdrErrorCode, message: string) {
    super(message);
    this.name = 'CdrError';
    this.code = code;
  }
}
