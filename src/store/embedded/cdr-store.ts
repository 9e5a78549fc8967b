/**
 * CdrStore for a single box: per tenant, the records of the retention
 * period in memory, oldest first, bounded by `maxPerTenant` (the oldest go
 * first when a tenant exceeds it). Not persisted: a restart loses the
 * CDRs, which a single-box demo or test accepts; a deployment that needs
 * them kept runs Redis.
 *
 * Records are held as JSON text, so a reader always gets its own copy and
 * a caller editing a record after `append` changes nothing stored.
 */
import {
  DEFAULT_CDR_RETENTION_DAYS, MAX_SCAN_PER_QUERY,
  checkQuery, comparePositions, decodeRecord, encodeRecord, formatPosition, matchesFilters, retentionMs,
  type CdrPage, type CdrPosition, type CdrQuery, type CdrRecord, type CdrStore,
} from '../cdr-store.js';
import { StoreError } from '../store-error.js';

export interface EmbeddedCdrStoreOptions {
  /** Default 30 days. */
  retentionDays?: number;
  /**
   * Most records kept per tenant (default 20,000: about 12 MB of JSON at
   * ≈ 600 bytes a record; a month of a small tenant's calls).
   */
  maxPerTenant?: number;
  /** Epoch ms; injected for tests. */
  now?: () => number;
}

interface Entry extends CdrPosition {
  readonly json: string;
}

/** Oldest first; `head` skips dropped entries without shifting the array each time. */
class TenantLog {
  entries: Entry[] = [];
  head = 0;

  get size(): number {
    return this.entries.length - this.head;
  }

  last(): Entry | undefined {
    return this.size > 0 ? this.entries[this.entries.length - 1] : undefined;
  }

  dropWhile(pred: (e: Entry) => boolean): void {
    while (this.head < this.entries.length && pred(this.entries[this.head] as Entry)) this.head++;
    // Compact once the dead prefix is most of the array: amortised O(1) per drop.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Index of the first entry at or after `p`, in [head, entries.length]. */
  lowerBound(p: CdrPosition): number {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (comparePositions(this.entries[mid] as Entry, p) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

export class EmbeddedCdrStore implements CdrStore {
  readonly #retentionMs: number;
  readonly #maxPerTenant: number;
  readonly #now: () => number;
  readonly #tenants = new Map<string, TenantLog>();
  #closed = false;

  constructor(options: EmbeddedCdrStoreOptions = {}) {
    this.#retentionMs = retentionMs(options.retentionDays ?? DEFAULT_CDR_RETENTION_DAYS);
    this.#maxPerTenant = options.maxPerTenant ?? 20_000;
    if (!Number.isSafeInteger(this.#maxPerTenant) || this.#maxPerTenant < 1) throw new RangeError(`maxPerTenant must be a positive integer, got ${this.#maxPerTenant}`);
    this.#now = options.now ?? Date.now;
  }

  async append(rec: Readonly<CdrRecord>): Promise<void> {
    this.#assertOpen();
    const { json, endedAt } = encodeRecord(rec);
    let log = this.#tenants.get(rec.tenant);
    if (log === undefined) {
      log = new TenantLog();
      this.#tenants.set(rec.tenant, log);
    }
    // Positions only grow (see cdr-store.ts): a late record goes after the latest one.
    const last = log.last();
    const position = last === undefined || endedAt > last.ms ? { ms: endedAt, seq: 0 } : { ms: last.ms, seq: last.seq + 1 };
    log.entries.push({ ...position, json });
    const cutoff = this.#now() - this.#retentionMs;
    const excess = log.size - this.#maxPerTenant;
    let dropped = 0;
    log.dropWhile((e) => {
      if (e.ms >= cutoff && dropped >= excess) return false;
      dropped++;
      return true;
    });
  }

  async query(q: CdrQuery): Promise<CdrPage> {
    this.#assertOpen();
    const c = checkQuery(q);
    const log = this.#tenants.get(c.tenant);
    if (log === undefined) return { items: [] };
    const lowest = Math.max(c.from ?? 0, this.#now() - this.#retentionMs);
    const floor = log.lowerBound({ ms: lowest, seq: 0 });
    // Exclusive upper bound: before the cursor, and before `to`.
    let end = log.entries.length;
    if (c.to !== undefined) end = Math.min(end, log.lowerBound({ ms: c.to, seq: 0 }));
    if (c.cursor !== undefined) end = Math.min(end, log.lowerBound(c.cursor));
    const items: CdrRecord[] = [];
    let i = end - 1;
    let scanned = 0;
    for (; i >= floor && items.length < c.limit && scanned < MAX_SCAN_PER_QUERY; i--, scanned++) {
      const rec = decodeRecord((log.entries[i] as Entry).json);
      if (rec !== undefined && matchesFilters(rec, c)) items.push(rec);
    }
    // `i + 1` is the last entry examined; older ones remain when i ≥ floor.
    const page: CdrPage = { items };
    if (i >= floor) page.nextCursor = formatPosition(log.entries[i + 1] as Entry);
    return page;
  }

  async trim(): Promise<void> {
    const cutoff = this.#now() - this.#retentionMs;
    for (const [tenant, log] of this.#tenants) {
      log.dropWhile((e) => e.ms < cutoff);
      if (log.size === 0) this.#tenants.delete(tenant);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#tenants.clear();
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreError('DP_STORE_CLOSED', 'the CDR store is closed');
  }
}
