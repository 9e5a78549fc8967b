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
  | 'DP_STORE_BAD_REPLY'
  /** A tenant id that cannot name a document faithfully (empty, not valid Unicode). */
  | 'DP_STORE_BAD_TENANT_ID'
  /** A document handed to `put` that JSON cannot carry (not an object, BigInt, cycle...). */
  | 'DP_STORE_BAD_DOCUMENT'
  /** A stored document that cannot be decoded (see StoredDocumentCorrupt). */
  | 'DP_STORE_CORRUPT_DOCUMENT'
  /** A counter key that cannot name a key faithfully (empty, not valid Unicode). */
  | 'DP_STORE_BAD_COUNTER_KEY'
  /** The embedded store's file cannot be read or is not a store file: start-up must stop. */
  | 'DP_STORE_BAD_FILE'
  /** A write was committed and announced, but the version index was not updated. */
  | 'DP_STORE_INDEX_LAG'
  /** The store was closed. */
  | 'DP_STORE_CLOSED'
  /** The store could not be read when it had to be (TenantCache start-up); `cause` says why. */
  | 'DP_STORE_UNAVAILABLE'
  /** A CDR handed to `append` that cannot be stored (no tenant, no end time, too large). */
  | 'DP_STORE_BAD_RECORD'
  /** A CDR query with a bad field (limit, time bounds, number, disposition). */
  | 'DP_STORE_BAD_QUERY'
  /** A CDR cursor no store handed out. */
  | 'DP_STORE_BAD_CURSOR'
  /** A webhook configuration that does not match WEBHOOK_CONFIG_SCHEMA. */
  | 'DP_STORE_BAD_WEBHOOK'
  /** A prompt put with a bad id, description or audio (empty, too large). */
  | 'DP_STORE_BAD_PROMPT'
  /** A prompt put beyond the tenant's prompt count or total bytes. */
  | 'DP_STORE_PROMPT_QUOTA';

export class StoreError extends Error {
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
  }
}

/**
 * A stored document exists at `version` but cannot be decoded (not JSON,
 * not an object): someone wrote the backend behind the store's back. Readers
 * treat it like a document that does not compile (keep what they have), not
 * like an unreachable store; a conditional write with `ifVersion: version`
 * replaces it.
 */
export class StoredDocumentCorrupt extends StoreError {
  constructor(readonly what: string, readonly version: number, reason: string) {
    super('DP_STORE_CORRUPT_DOCUMENT', `${what} version ${version} cannot be decoded: ${reason}`);
    this.name = 'StoredDocumentCorrupt';
  }
}
