/**
 * TenantStore: where tenant documents (routing-rules/tenant.schema.json),
 * the global document (global blacklist, carrier segments, ported numbers)
 * and round-robin counters live. Redis is the source of truth in a cluster;
 * the embedded store (a JSON file written with write + rename) serves a
 * single box. Both pass test/unit/store/tenant-contract.ts.
 *
 * A store keeps documents, not compiled rules: validation and compilation
 * belong to src/routing, and a store never judges a document's content
 * (callers validate before `put`). What a store guarantees:
 *   - every document carries a version, raised by every successful write;
 *   - a write can be conditional on the version the writer read
 *     (`ifVersion`), so two admins cannot silently overwrite each other;
 *   - a write is atomic: a reader sees the old document or the new one;
 *   - every successful write is announced to `watch` listeners on every node
 *     (Redis: pub/sub; embedded: in-process), and `versions()` lets a node
 *     verify periodically that it missed no announcement.
 */
import type { GlobalDocument, TenantDocument } from '../routing/model.js';

export interface Versioned<T> {
  doc: T;
  /** ≥ 1; raised by every successful write of this document. */
  version: number;
}

export interface WriteOptions {
  /**
   * Compare-and-set: `0` = the document must not exist yet; `n` = its
   * current version must be `n`. Absent = unconditional.
   * A mismatch throws TenantStoreConflict (nothing is written).
   */
  ifVersion?: number;
}

export type ConfigChange =
  | { kind: 'tenant'; tenant: string; version: number; deleted?: boolean }
  | { kind: 'global'; version: number };

export interface TenantStore {
  /**
   * The document and its version, or undefined. A stored value that cannot
   * be decoded rejects with StoredDocumentCorrupt (code
   * DP_STORE_CORRUPT_DOCUMENT, carrying its version); any other rejection
   * means the backend is unreachable.
   */
  getTenant(id: string): Promise<Versioned<TenantDocument> | undefined>;
  /** Creates or replaces the document `doc.id`; returns the new version. */
  putTenant(doc: TenantDocument, opts?: WriteOptions): Promise<number>;
  /** false when there was no such tenant (or ifVersion mismatched → throws). */
  deleteTenant(id: string, opts?: WriteOptions): Promise<boolean>;
  /** Every tenant id with its current version: cheap enough to poll every few seconds. */
  tenantVersions(): Promise<Map<string, number>>;
  /** The global document; version 0 and an empty document when never written. */
  getGlobal(): Promise<Versioned<GlobalDocument>>;
  /**
   * The global document's version alone (0 when never written), for the same
   * periodic check as `tenantVersions`: the global document carries the
   * ported-number list and may be megabytes, too much to fetch every poll.
   */
  globalVersion(): Promise<number>;
  putGlobal(doc: GlobalDocument, opts?: WriteOptions): Promise<number>;
  /**
   * Atomic increment of a round-robin counter shared by every node (the
   * engine names keys `rr:<tenant>:...`); returns the new value, 1 on first use.
   */
  incrCounter(key: string): Promise<number>;
  /** Change announcements, including this node's own writes. Returns an unsubscribe function. */
  watch(listener: (change: ConfigChange) => void): () => void;
  close(): Promise<void>;
}

/** A conditional write found another version than the writer expected. */
export class TenantStoreConflict extends Error {
  readonly code = 'DP_STORE_CONFLICT';

  constructor(readonly what: string, readonly expected: number, readonly actual: number) {
    super(`${what}: expected version ${expected}, found ${actual}`);
    this.name = 'TenantStoreConflict';
  }
}
