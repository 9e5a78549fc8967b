/**
 * CDR store (话单): the record every call ends with, kept per tenant for a
 * retention period, queried newest first with a cursor.
 *
 * The record shape is declared here rather than imported from src/call: the
 * store is a lower layer (DESIGN.md §1 rule 3). `CallRecord` of
 * src/call/call-tracker.ts is assignable to `CdrRecord`; src/cdr/cdr-writer.ts
 * holds the compile-time check that keeps the two in step.
 *
 * Position and time range. Each record gets a position `<ms>-<seq>` in its
 * tenant's sequence (a Redis stream id in the Redis store). `<ms>` is the
 * record's `endedAt`, raised to the tenant's latest position when the record
 * arrives after a later one (another node's clock a little behind, a record
 * waiting in a writer's queue): positions only grow, so a cursor never sees
 * a record appear behind it. Time ranges (`from`, `to`) and retention are on
 * this position, i.e. on the end time: a CDR exists once the call ended, and
 * "the calls of yesterday" in a 话单 export means calls that finished then.
 * The clamp is at most the skew or queue delay (milliseconds, seconds in an
 * outage); the record's own `endedAt` stays exact.
 */
import type { CallOrigin } from '../routing/index.js';
import { StoreError } from './store-error.js';
import { assertTenantId } from './tenant-record.js';
import { isWellFormedUnicode } from './unicode.js';

export const DISPOSITIONS = ['answered', 'busy', 'no-answer', 'rejected', 'failed', 'abandoned'] as const;
export type CdrDisposition = (typeof DISPOSITIONS)[number];

export interface CdrAttempt {
  /** Extension number, or the external number with its gateway. */
  target: string;
  kind: 'extension' | 'external';
  startedAt: number;
  endedAt: number;
  outcome: string;
  status: number;
}

export interface CdrRecord {
  callId: string;
  tenant: string;
  origin: CallOrigin;
  /** As dialled (Request-URI user). */
  called: string;
  /** Calling number (carrier calls) or the calling extension. */
  caller?: string;
  callerRegion?: { province?: string; city?: string };
  route?: string;
  rule?: string;
  startedAt: number;
  ringingAt?: number;
  answeredAt?: number;
  endedAt?: number;
  attempts: readonly CdrAttempt[];
  /** Final status the caller got. */
  finalStatus?: number;
  disposition?: CdrDisposition;
  /** How the call ended: a BYE through us, the safety timeout, its final response, or an administrator (DELETE …/calls/{id}). */
  endedBy?: 'bye' | 'timeout' | 'final' | 'admin';
}

export interface CdrQuery {
  tenant: string;
  /** Inclusive lower bound on the end time (epoch ms). */
  from?: number;
  /** Exclusive upper bound on the end time (epoch ms). */
  to?: number;
  /** Matches the called or the calling number (see `sameNumber`). */
  number?: string;
  disposition?: CdrDisposition;
  /** 1..MAX_QUERY_LIMIT records per page. */
  limit: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

export interface CdrPage {
  /** Newest first. */
  items: CdrRecord[];
  /** Present when older records may remain; pass it as `cursor` for the next page. */
  nextCursor?: string;
}

export interface CdrStore {
  /** Appends a finished call's record (DP_STORE_BAD_RECORD when it has no tenant or end time). */
  append(rec: Readonly<CdrRecord>): Promise<void>;
  /**
   * One page, newest first. A page may hold fewer than `limit` records while
   * `nextCursor` is still set: with selective filters each page examines at
   * most MAX_SCAN_PER_QUERY records, so one request never walks a month of
   * calls. Bad input rejects with DP_STORE_BAD_QUERY / DP_STORE_BAD_CURSOR.
   */
  query(q: CdrQuery): Promise<CdrPage>;
  /** Drops records older than the retention now (appends also trim; this covers idle tenants). */
  trim(): Promise<void>;
  close(): Promise<void>;
}

export const DAY_MS = 86_400_000;
export const DEFAULT_CDR_RETENTION_DAYS = 30;
export const MAX_QUERY_LIMIT = 1000;
export const MAX_SCAN_PER_QUERY = 5000;
/** Longest stored record (JSON): a call with hundreds of attempts fits; a runaway one is refused. */
export const MAX_RECORD_BYTES = 64 * 1024;

/** A position `<ms>-<seq>`, both non-negative safe integers. */
export interface CdrPosition {
  ms: number;
  seq: number;
}

export function formatPosition(p: CdrPosition): string {
  return `${p.ms}-${p.seq}`;
}

/** Parses a cursor; DP_STORE_BAD_CURSOR for anything a store did not hand out. */
export function parseCursor(cursor: unknown): CdrPosition {
  const m = typeof cursor === 'string' ? /^(\d{1,15})-(\d{1,15})$/.exec(cursor) : null;
  if (m === null) throw new StoreError('DP_STORE_BAD_CURSOR', `not a CDR cursor: ${describe(cursor)}`);
  return { ms: Number(m[1]), seq: Number(m[2]) };
}

export function comparePositions(a: CdrPosition, b: CdrPosition): number {
  return a.ms - b.ms || a.seq - b.seq;
}

export function retentionMs(days: number): number {
  if (!Number.isFinite(days) || days <= 0 || days > 3650) throw new RangeError(`CDR retention must be 0 < days ≤ 3650, got ${days}`);
  return Math.round(days * DAY_MS);
}

/** A checked query, with the number already in its comparable form. */
export interface CheckedQuery {
  tenant: string;
  from: number | undefined;
  to: number | undefined;
  number: string | undefined;
  disposition: CdrDisposition | undefined;
  limit: number;
  cursor: CdrPosition | undefined;
}

/** Validates a query from an untrusted caller (the admin API): never throws anything but a coded StoreError. */
export function checkQuery(q: CdrQuery): CheckedQuery {
  if (typeof q !== 'object' || q === null) throw new StoreError('DP_STORE_BAD_QUERY', 'a CDR query must be an object');
  assertTenantId(q.tenant);
  const time = (name: string, v: unknown): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new StoreError('DP_STORE_BAD_QUERY', `${name} must be epoch milliseconds, got ${describe(v)}`);
    return v;
  };
  const from = time('from', q.from);
  const to = time('to', q.to);
  if (!Number.isSafeInteger(q.limit) || q.limit < 1 || q.limit > MAX_QUERY_LIMIT) {
    throw new StoreError('DP_STORE_BAD_QUERY', `limit must be an integer from 1 to ${MAX_QUERY_LIMIT}, got ${describe(q.limit)}`);
  }
  if (q.disposition !== undefined && !(DISPOSITIONS as readonly unknown[]).includes(q.disposition)) {
    throw new StoreError('DP_STORE_BAD_QUERY', `unknown disposition ${describe(q.disposition)}`);
  }
  let number: string | undefined;
  if (q.number !== undefined) {
    if (typeof q.number !== 'string' || q.number.length > 64 || !isWellFormedUnicode(q.number)) throw new StoreError('DP_STORE_BAD_QUERY', `not a phone number: ${describe(q.number)}`);
    number = comparableNumber(q.number);
    if (number === '') throw new StoreError('DP_STORE_BAD_QUERY', `not a phone number: ${describe(q.number)}`);
  }
  return {
    tenant: q.tenant, from, to, number, disposition: q.disposition, limit: q.limit,
    cursor: q.cursor === undefined ? undefined : parseCursor(q.cursor),
  };
}

/**
 * The form numbers are compared in: separators (space, -, (, ), .) removed,
 * and China's country code (+86, 0086) dropped, because carriers present the
 * same caller as `+8613800138000`, `008613800138000` or `13800138000`.
 * Only these prefixes: a bare `86...` may be a national number. Extensions
 * (`1001`) and short numbers compare as they are.
 */
export function comparableNumber(n: string): string {
  const s = n.replace(/[\s\-().]/g, '');
  if (s.startsWith('+86')) return s.slice(3);
  if (s.startsWith('0086')) return s.slice(4);
  return s;
}

/** Whether a record passes the query's number and disposition filters. */
export function matchesFilters(rec: CdrRecord, q: CheckedQuery): boolean {
  if (q.disposition !== undefined && rec.disposition !== q.disposition) return false;
  if (q.number !== undefined) {
    const called = typeof rec.called === 'string' ? comparableNumber(rec.called) : undefined;
    const caller = typeof rec.caller === 'string' ? comparableNumber(rec.caller) : undefined;
    if (called !== q.number && caller !== q.number) return false;
  }
  return true;
}

/**
 * The JSON text stored for a record, and its end time. Records come from our
 * own tracker, but a store must not accept what it cannot give back.
 */
export function encodeRecord(rec: Readonly<CdrRecord>): { json: string; endedAt: number } {
  if (typeof rec !== 'object' || rec === null) throw new StoreError('DP_STORE_BAD_RECORD', 'a CDR must be an object');
  assertTenantId(rec.tenant);
  const endedAt = rec.endedAt;
  if (typeof endedAt !== 'number' || !Number.isSafeInteger(endedAt) || endedAt < 0) {
    throw new StoreError('DP_STORE_BAD_RECORD', `CDR ${describe(rec.callId)} has no end time (endedAt ${describe(endedAt)})`);
  }
  let json: string;
  try {
    json = JSON.stringify(rec);
  } catch (err) {
    throw new StoreError('DP_STORE_BAD_RECORD', `CDR ${describe(rec.callId)} is not representable as JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (Buffer.byteLength(json) > MAX_RECORD_BYTES) throw new StoreError('DP_STORE_BAD_RECORD', `CDR ${describe(rec.callId)} is larger than ${MAX_RECORD_BYTES} bytes`);
  return { json, endedAt };
}

/** Parses stored JSON; undefined for anything that is not a record (written around the store). */
export function decodeRecord(json: string): CdrRecord | undefined {
  try {
    const v: unknown = JSON.parse(json);
    return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as CdrRecord).tenant === 'string' ? v as CdrRecord : undefined;
  } catch {
    return undefined;
  }
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
  if (typeof v === 'bigint') return `${v}n`;
  return String(v);
}
