/**
 * CdrStore for a single box: per tenant, the records of the retention
 * period in memory, oldest first, bounded by `maxPerTenant` (the oldest go
 * first when a tenant exceeds it).
 *
 * Persistence (`EmbeddedCdrStore.open({ file })`; `new` keeps memory only):
 * an append-only JSON-lines file, one `{"pos":"<ms>-<seq>","cdr":{…}}` per
 * record, replayed at open. The position is written with the record so a
 * cursor handed out before a restart still means the same place after it.
 *   - Appends do not touch the disk: a call's end must not wait for an
 *     fsync, and at busy hours one fsync per CDR would be the box's main
 *     I/O. Lines are buffered and written in one write + fdatasync every
 *     `flushMs` (default 1 s), and at close. A crash loses at most the last
 *     interval's records.
 *   - A crash in the middle of a write leaves a torn last line: it is
 *     ignored with one warning and cut off the file (so the next append
 *     starts on a line of its own), not a start-up failure. A bad line with
 *     good lines after it is not a torn write but damage: DP_STORE_BAD_FILE
 *     naming the file and the line, as for the tenant file.
 *   - Retention at open: records older than it are not loaded. The file
 *     keeps growing with appends and only loses lines when it is rewritten
 *     (temp file, fsync, rename) with just the live records, which happens
 *     when it holds more than twice the live records and at least
 *     `compactMinLines` lines (at open, after a flush, after trim()).
 *   - Mode 0600: CDRs carry callers' numbers.
 *
 * Records are held as JSON text, so a reader always gets its own copy and
 * a caller editing a record after `append` changes nothing stored.
 */
import { open as openFile, truncate, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  DEFAULT_CDR_RETENTION_DAYS, MAX_SCAN_PER_QUERY,
  checkQuery, comparePositions, decodeRecord, encodeRecord, formatPosition, matchesFilters, parseCursor, retentionMs,
  type CdrPage, type CdrPosition, type CdrQuery, type CdrRecord, type CdrStore,
} from '../cdr-store.js';
import { StoreError } from '../store-error.js';
import { assertTenantId } from '../tenant-record.js';
import { writeFileAtomic } from './tenant-store.js';
import { SerialQueue } from './serial-queue.js';

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

export interface EmbeddedCdrFileOptions extends EmbeddedCdrStoreOptions {
  /** The JSON-lines file; absent = memory only. Created at open when missing. */
  file?: string;
  /** Longest time an appended record waits in memory before it is written. Default 1 s. */
  flushMs?: number;
  /** The file is compacted only once it has at least this many lines (default 10,000). */
  compactMinLines?: number;
  /** A torn last line, a failed flush. Default `process.emitWarning`. */
  onWarning?: (message: string, err?: unknown) => void;
}

/** Lines kept for a file that cannot be written (disk full) before the oldest are given up. */
const MAX_PENDING_LINES = 100_000;

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
  /** File mode only (set by open()). */
  #file: { path: string; handle: FileHandle; flushMs: number; compactMinLines: number; warn: (message: string, err?: unknown) => void } | undefined;
  /** Lines appended but not yet written. */
  #pending: string[] = [];
  /** Complete lines in the file, live or not: what compaction compares with the live records. */
  #fileLines = 0;
  /** Bytes of complete lines in the file: a failed write is cut back to it. */
  #fileBytes = 0;
  #flushTimer: NodeJS.Timeout | undefined;
  #flushFailing = false;
  /** File tasks, one at a time. */
  readonly #queue = new SerialQueue();

  constructor(options: EmbeddedCdrStoreOptions = {}) {
    this.#retentionMs = retentionMs(options.retentionDays ?? DEFAULT_CDR_RETENTION_DAYS);
    this.#maxPerTenant = options.maxPerTenant ?? 20_000;
    if (!Number.isSafeInteger(this.#maxPerTenant) || this.#maxPerTenant < 1) throw new RangeError(`maxPerTenant must be a positive integer, got ${this.#maxPerTenant}`);
    this.#now = options.now ?? Date.now;
  }

  /**
   * Opens a store kept in `options.file`: replays it (dropping records past
   * retention and a torn last line), creating it when missing, so an
   * unwritable directory fails start-up rather than the first flush.
   * DP_STORE_BAD_FILE when it cannot be read or a line before the last is bad.
   */
  static async open(options: EmbeddedCdrFileOptions = {}): Promise<EmbeddedCdrStore> {
    const store = new EmbeddedCdrStore(options);
    if (options.file === undefined) return store;
    const path = resolve(options.file);
    const flushMs = options.flushMs ?? 1000;
    const compactMinLines = options.compactMinLines ?? 10_000;
    if (!Number.isFinite(flushMs) || flushMs < 0) throw new RangeError(`flushMs must be a non-negative number, got ${flushMs}`);
    const warn = options.onWarning ?? ((message: string, err?: unknown) => process.emitWarning(err === undefined ? message : `${message}: ${err instanceof Error ? err.message : String(err)}`, { code: 'DP_STORE_CDR_FILE' }));
    await store.#replay(path, warn);
    let handle: FileHandle;
    try {
      handle = await openFile(path, 'a', 0o600);
    } catch (err) {
      throw new StoreError('DP_STORE_BAD_FILE', `cannot open the CDR file ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    store.#file = { path, handle, flushMs, compactMinLines, warn };
    await store.#queue.run(() => store.#compactIfGrown());
    return store;
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
    if (this.#file !== undefined) {
      this.#pending.push(`{"pos":"${formatPosition(position)}","cdr":${json}}\n`);
      this.#scheduleFlush();
    }
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
    if (this.#file !== undefined && !this.#closed) await this.#queue.run(() => this.#compactIfGrown());
  }

  /** Writes what is buffered, closes the file, and refuses further calls. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const file = this.#file;
    if (file !== undefined) {
      await this.#queue.run(() => this.#flush()).catch((err: unknown) => file.warn(`CDR file ${file.path}: ${this.#pending.length} records not written at close`, err));
      await this.#queue.run(() => file.handle.close()).catch(() => undefined);
    }
    this.#tenants.clear();
  }

  /** Loads the file's live records; cuts a torn last line off it. */
  async #replay(path: string, warn: (message: string, err?: unknown) => void): Promise<void> {
    let handle: FileHandle;
    try {
      handle = await openFile(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new StoreError('DP_STORE_BAD_FILE', `cannot read the CDR file ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const cutoff = this.#now() - this.#retentionMs;
    /** The first bad line; fatal if a good one follows, else a torn tail to cut at `offset`. */
    let bad: { line: number; offset: number; reason: string } | undefined;
    let lineNo = 0;
    let offset = 0;
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const take = (bytes: Buffer): void => {
      lineNo++;
      const start = offset;
      offset += bytes.length + 1;
      if (bytes.length === 0) return;
      let entry: { tenant: string; pos: CdrPosition; json: string } | string;
      try {
        entry = parseLine(decoder.decode(bytes));
      } catch (err) {
        entry = err instanceof Error ? err.message : String(err);
      }
      if (typeof entry === 'string') {
        bad ??= { line: lineNo, offset: start, reason: entry };
        return;
      }
      if (bad !== undefined) {
        throw new StoreError('DP_STORE_BAD_FILE', `the CDR file ${path} is damaged at line ${bad.line} (${bad.reason}); refusing to start rather than lose the records after it. Repair or move the file away`);
      }
      this.#fileLines++;
      this.#fileBytes = offset;
      this.#load(entry.tenant, entry.pos, entry.json, cutoff);
    };
    try {
      // Read in chunks, not as one string: a month of CDRs can be larger than V8's longest string.
      const chunk = Buffer.alloc(1 << 20);
      let carry: Buffer = Buffer.alloc(0);
      for (;;) {
        const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
        if (bytesRead === 0) break;
        let data = Buffer.concat([carry, chunk.subarray(0, bytesRead)]);
        let nl: number;
        while ((nl = data.indexOf(0x0a)) >= 0) {
          take(data.subarray(0, nl));
          data = data.subarray(nl + 1);
        }
        carry = Buffer.from(data);
      }
      // Bytes after the last newline: a write the crash cut short.
      if (carry.length > 0) bad ??= { line: lineNo + 1, offset, reason: 'no end of line' };
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError('DP_STORE_BAD_FILE', `cannot read the CDR file ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    } finally {
      await handle.close();
    }
    const torn = bad as { line: number; offset: number; reason: string } | undefined;
    if (torn !== undefined) {
      warn(`CDR file ${path}: ignoring a torn last line (line ${torn.line}: ${torn.reason}), left by an interrupted write`);
      await truncate(path, torn.offset);
    }
    this.#fileBytes = torn?.offset ?? offset;
  }

  /** One replayed record: kept unless past retention; positions stay increasing per tenant. */
  #load(tenant: string, pos: CdrPosition, json: string, cutoff: number): void {
    let log = this.#tenants.get(tenant);
    const last = log?.last();
    // A hand-edited file could go backwards; a cursor must never see a record appear behind it.
    const position = last === undefined || comparePositions(pos, last) > 0 ? pos : { ms: last.ms, seq: last.seq + 1 };
    if (position.ms < cutoff) return;
    if (log === undefined) {
      log = new TenantLog();
      this.#tenants.set(tenant, log);
    }
    log.entries.push({ ...position, json });
    const excess = log.size - this.#maxPerTenant;
    if (excess > 0) {
      let dropped = 0;
      log.dropWhile(() => dropped++ < excess);
    }
  }

  #scheduleFlush(): void {
    const file = this.#file;
    if (file === undefined || this.#flushTimer !== undefined || this.#closed) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#queue.run(async () => {
        await this.#flush();
        await this.#compactIfGrown();
      }).then(() => {
        if (this.#flushFailing) file.warn(`CDR file ${file.path} writable again`);
        this.#flushFailing = false;
      }, (err: unknown) => {
        // Kept in #pending: the next interval tries again. Warned once per episode.
        if (!this.#flushFailing) file.warn(`CDR file ${file.path} cannot be written; records are kept in memory and retried`, err);
        this.#flushFailing = true;
        this.#scheduleFlush();
      });
    }, file.flushMs);
    // Buffered records alone must not keep the process alive; close() writes them.
    this.#flushTimer.unref();
  }

  /** One write and one fdatasync for everything buffered. Runs in the queue. */
  async #flush(): Promise<void> {
    const file = this.#file;
    if (file === undefined || this.#pending.length === 0) return;
    const lines = this.#pending;
    this.#pending = [];
    const text = Buffer.from(lines.join(''), 'utf8');
    try {
      await file.handle.write(text);
      await file.handle.datasync();
    } catch (err) {
      // A partial write (disk full) would leave a torn line in the middle of
      // the file once the retry succeeds: cut the file back to its last
      // complete line first. The lines are retried at the next interval.
      await file.handle.truncate(this.#fileBytes).catch(() => undefined);
      this.#pending = [...lines, ...this.#pending];
      if (this.#pending.length > MAX_PENDING_LINES) this.#pending.splice(0, this.#pending.length - MAX_PENDING_LINES);
      throw err;
    }
    this.#fileLines += lines.length;
    this.#fileBytes += text.length;
  }

  /** Rewrites the file with only the live records when it has grown well past them. Runs in the queue. */
  async #compactIfGrown(): Promise<void> {
    const file = this.#file;
    if (file === undefined) return;
    let live = 0;
    for (const log of this.#tenants.values()) live += log.size;
    // Buffered lines count: they are on their way into the file.
    const lines = this.#fileLines + this.#pending.length;
    if (lines < file.compactMinLines || lines <= 2 * live) return;
    // Memory holds every buffered line too: the new file has them all.
    const parts: string[] = [];
    for (const log of this.#tenants.values()) {
      for (let i = log.head; i < log.entries.length; i++) {
        const e = log.entries[i] as Entry;
        parts.push(`{"pos":"${formatPosition(e)}","cdr":${e.json}}\n`);
      }
    }
    const text = parts.join('');
    // Taken now, before any await: lines appended during the rewrite stay buffered for the new file.
    const saved = this.#pending;
    this.#pending = [];
    try {
      await writeFileAtomic(file.path, text);
    } catch (err) {
      this.#pending = [...saved, ...this.#pending];
      throw err;
    }
    const handle = await openFile(file.path, 'a', 0o600);
    await file.handle.close().catch(() => undefined);
    file.handle = handle;
    this.#fileLines = parts.length;
    this.#fileBytes = Buffer.byteLength(text);
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreError('DP_STORE_CLOSED', 'the CDR store is closed');
  }
}

/** A line of the file; throws a short reason for anything else. */
function parseLine(text: string): { tenant: string; pos: CdrPosition; json: string } {
  const v: unknown = JSON.parse(text);
  if (typeof v !== 'object' || v === null) throw new Error('not a JSON object');
  const { pos, cdr } = v as { pos?: unknown; cdr?: unknown };
  const position = parseCursor(pos);
  if (typeof cdr !== 'object' || cdr === null || Array.isArray(cdr)) throw new Error('no "cdr" object');
  const tenant = (cdr as { tenant?: unknown }).tenant;
  assertTenantId(tenant);
  // Re-serialising parsed JSON gives back the text that was written (same key order).
  return { tenant, pos: position, json: JSON.stringify(cdr) };
}
