/**
 * CdrStore in Redis Streams (Redis ≥ 7.0: `XADD <ms>-*`, exclusive ranges).
 *
 * Layout: `${prefix}cdr:{<tenant>}`, one stream per tenant under the
 * tenant's hash tag (its slot is the tenant's, like its counters). Each
 * entry has one field `r`, the record's JSON text. The entry id is the
 * record's position (cdr-store.ts): `<endedAt>-<seq>`, so a time range is
 * one XREVRANGE and the cursor is an entry id.
 *
 * Retention: every append trims the stream with `MINID ~ <now − retention>`
 * and `MAXLEN ~ <maxPerTenant>`, and sets the key to expire one retention
 * period after its last append, so an idle tenant's stream disappears by
 * itself. `~` lets Redis trim whole radix-tree nodes only (cheap), hence
 * entries slightly past retention may linger: queries never return them.
 */
import type { Redis } from 'ioredis';
import {
  DEFAULT_CDR_RETENTION_DAYS, MAX_SCAN_PER_QUERY,
  checkQuery, decodeRecord, encodeRecord, formatPosition, matchesFilters, parseCursor, retentionMs,
  type CdrPage, type CdrQuery, type CdrRecord, type CdrStore,
} from '../cdr-store.js';
import { StoreError } from '../store-error.js';
import { defineSingleKeyScript, isWrongTypeError, type SingleKeyScript } from './script.js';

export interface RedisCdrStoreOptions {
  /** Command connection; the caller owns it. */
  redis: Redis;
  prefix: string;
  /** Default 30 days. */
  retentionDays?: number;
  /**
   * Most records kept per tenant, whatever their age (default 1,000,000:
   * a month at 0.4 calls/s; ≈ 0.6 GB of Redis memory at that size).
   */
  maxPerTenant?: number;
  /** Epoch ms, for the retention cutoff; injected for tests. */
  now?: () => number;
}

export function cdrKey(prefix: string, tenant: string): string {
  return `${prefix}cdr:{${tenant}}`;
}

/**
 * Appends one record at max(endedAt, the stream's last ms): ids must grow,
 * and a record arriving after a later one (clock skew between nodes, a
 * writer's queue) must still be kept. `<ms>-*` lets Redis pick the sequence.
 * Should the last id be above the last entry (entries deleted around the
 * store), XADD refuses the explicit ms and `*` is used instead.
 *
 * KEYS[1] stream; ARGV[1] endedAt ms; ARGV[2] MINID; ARGV[3] MAXLEN;
 * ARGV[4] expiry ms; ARGV[5] JSON. Returns the new entry id.
 */
const APPEND_LUA = `
local ms = tonumber(ARGV[1])
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then
  local lastMs = tonumber(string.match(last[1][1], '^(%d+)-'))
  if lastMs and lastMs > ms then ms = lastMs end
end
local ok, id = pcall(redis.call, 'XADD', KEYS[1], 'MINID', '~', ARGV[2], string.format('%.0f', ms) .. '-*', 'r', ARGV[5])
if not ok then
  id = redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[2], '*', 'r', ARGV[5])
end
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return id
`;

type StreamEntry = [id: string, fields: string[]];

export class RedisCdrStore implements CdrStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #retentionMs: number;
  readonly #maxPerTenant: number;
  readonly #now: () => number;
  readonly #append: SingleKeyScript;

  constructor(options: RedisCdrStoreOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#retentionMs = retentionMs(options.retentionDays ?? DEFAULT_CDR_RETENTION_DAYS);
    this.#maxPerTenant = options.maxPerTenant ?? 1_000_000;
    if (!Number.isSafeInteger(this.#maxPerTenant) || this.#maxPerTenant < 1) throw new RangeError(`maxPerTenant must be a positive integer, got ${this.#maxPerTenant}`);
    this.#now = options.now ?? Date.now;
    this.#append = defineSingleKeyScript(options.redis, 'dialplaneCdrAppend', APPEND_LUA);
  }

  async append(rec: Readonly<CdrRecord>): Promise<void> {
    const { json, endedAt } = encodeRecord(rec);
    const reply = await this.#append(cdrKey(this.#prefix, rec.tenant), String(endedAt), String(this.#cutoff()),
      String(this.#maxPerTenant), String(this.#retentionMs), json);
    if (typeof reply !== 'string') throw new StoreError('DP_STORE_BAD_REPLY', `CDR append: unexpected reply ${JSON.stringify(reply)}`);
  }

  async query(q: CdrQuery): Promise<CdrPage> {
    const c = checkQuery(q);
    const key = cdrKey(this.#prefix, c.tenant);
    const start = `${Math.max(c.from ?? 0, this.#cutoff())}-0`;
    // Exclusive upper bound: the cursor (always below `to` when it came from this query), else `to`.
    let end = c.cursor !== undefined ? `(${formatPosition(c.cursor)}` : c.to !== undefined ? `(${c.to}-0` : '+';
    if (c.cursor !== undefined && c.to !== undefined && c.cursor.ms >= c.to) end = `(${c.to}-0`;
    const items: CdrRecord[] = [];
    let scanned = 0;
    let lastSeen: string | undefined;
    let more: boolean;
    for (;;) {
      // Enough for the page with selective filters in one round trip, plus
      // one entry of look-ahead that says whether older ones remain.
      const want = Math.min(MAX_SCAN_PER_QUERY - scanned, Math.max(2 * (c.limit - items.length), 50));
      const batch = await this.#range(key, end, start, want + 1);
      let examined = 0;
      while (examined < batch.length && examined < want && items.length < c.limit) {
        const [id, fields] = batch[examined] as StreamEntry;
        examined++;
        lastSeen = id;
        const rec = fields[0] === 'r' && typeof fields[1] === 'string' ? decodeRecord(fields[1]) : undefined;
        if (rec !== undefined && matchesFilters(rec, c)) items.push(rec);
      }
      scanned += examined;
      more = batch.length > examined;
      if (!more || items.length >= c.limit || scanned >= MAX_SCAN_PER_QUERY) break;
      end = `(${lastSeen ?? ''}`;
    }
    const page: CdrPage = { items };
    if (more && lastSeen !== undefined) {
      parseCursor(lastSeen); // an id not of our form would be a cursor we could not take back
      page.nextCursor = lastSeen;
    }
    return page;
  }

  /**
   * Trims every tenant's stream to the retention (SCAN over the prefix;
   * appends trim their own stream, this covers tenants that went quiet
   * before their key expired).
   */
  async trim(): Promise<void> {
    const cutoff = String(this.#cutoff());
    const pattern = `${escapeGlob(`${this.#prefix}cdr:{`)}*`;
    let cursor = '0';
    do {
      const [next, keys] = await this.#redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      for (const key of keys) {
        try {
          await this.#redis.xtrim(key, 'MINID', '~', cutoff);
        } catch (err) {
          if (!isWrongTypeError(err)) throw err;
        }
      }
      cursor = next;
    } while (cursor !== '0');
  }

  /** The connection belongs to the caller. */
  async close(): Promise<void> {
    return undefined;
  }

  #cutoff(): number {
    return Math.max(0, this.#now() - this.#retentionMs);
  }

  async #range(key: string, end: string, start: string, count: number): Promise<StreamEntry[]> {
    try {
      return await this.#redis.xrevrange(key, end, start, 'COUNT', count) as StreamEntry[];
    } catch (err) {
      // A key of another type reads as no records.
      if (isWrongTypeError(err)) return [];
      throw err;
    }
  }
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}
