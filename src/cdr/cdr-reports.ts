/**
 * 来电分析: reports over CDRs, as pure functions of the records (no store,
 * no clock), so the admin API can run them over a query's result and tests
 * can state them as tables.
 *
 * Conventions shared by every report:
 *   - a call is answered when it has an answer time (disposition
 *     `answered`); every other call is missed (漏话: busy, no answer,
 *     abandoned while ringing, rejected, failed);
 *   - calls are placed in time by when they came in (`startedAt`), in the
 *     given IANA time zone (default Asia/Shanghai). The store selects by end
 *     time; a call spanning midnight counts for the day it started;
 *   - records with missing or malformed fields are counted where they can
 *     be and skipped where they cannot, never thrown on.
 */
import { DISPOSITIONS, type CdrDisposition, type CdrRecord } from '../store/cdr-store.js';
import { CdrError } from './cdr-error.js';
import { DEFAULT_TIME_ZONE, assertTimeZone, localDay, localHour, zonedTime } from './time-zone.js';

export const UNKNOWN_REGION = '未知';

export function isAnswered(rec: Readonly<CdrRecord>): boolean {
  return rec.disposition === 'answered' || typeof rec.answeredAt === 'number';
}

const validTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export interface CallCounts {
  calls: number;
  answered: number;
  missed: number;
}

function count(c: CallCounts, rec: Readonly<CdrRecord>): void {
  c.calls++;
  if (isAnswered(rec)) c.answered++;
  else c.missed++;
}

export interface NumberPeriodRow extends CallCounts {
  /** The called number (the tenant's number or extension that was dialled). */
  number: string;
  /** Local `YYYY-MM-DD` (day) or `YYYY-MM-DD HH` (hour). */
  period: string;
}

/** Calls per called number per local hour or day, sorted by number then period. */
export function callsPerNumber(
  records: Iterable<Readonly<CdrRecord>>, options: { bucket: 'hour' | 'day'; timeZone?: string },
): NumberPeriodRow[] {
  if (options.bucket !== 'hour' && options.bucket !== 'day') throw new CdrError('DP_CDR_BAD_OPTION', `bucket must be 'hour' or 'day', got ${String(options.bucket)}`);
  const timeZone = options.timeZone ?? DEFAULT_TIME_ZONE;
  assertTimeZone(timeZone);
  const rows = new Map<string, NumberPeriodRow>();
  for (const rec of records) {
    if (!validTime(rec.startedAt) || typeof rec.called !== 'string') continue;
    const z = zonedTime(rec.startedAt, timeZone);
    const period = options.bucket === 'hour' ? localHour(z) : localDay(z);
    const key = `${rec.called}\u0000${period}`;
    let row = rows.get(key);
    if (row === undefined) {
      row = { number: rec.called, period, calls: 0, answered: 0, missed: 0 };
      rows.set(key, row);
    }
    count(row, rec);
  }
  return [...rows.values()].sort((a, b) => compare(a.number, b.number) || compare(a.period, b.period));
}

export interface AnswerSummary extends CallCounts {
  /** answered / calls, 0 when there are no calls. */
  answerRate: number;
  byDisposition: Record<CdrDisposition | 'unknown', number>;
}

/** Answered versus missed, with the count of every disposition. */
export function answeredVsMissed(records: Iterable<Readonly<CdrRecord>>): AnswerSummary {
  const byDisposition = Object.fromEntries([...DISPOSITIONS, 'unknown'].map((d) => [d, 0])) as Record<CdrDisposition | 'unknown', number>;
  const c: CallCounts = { calls: 0, answered: 0, missed: 0 };
  for (const rec of records) {
    count(c, rec);
    const d = (DISPOSITIONS as readonly unknown[]).includes(rec.disposition) ? rec.disposition as CdrDisposition : 'unknown';
    byDisposition[d]++;
  }
  return { ...c, answerRate: c.calls === 0 ? 0 : c.answered / c.calls, byDisposition };
}

export interface WaitSummary {
  /** Answered calls with usable times. */
  answered: number;
  /** Mean of answeredAt − startedAt in ms; undefined when no call was answered. */
  averageMs: number | undefined;
  maxMs: number | undefined;
}

/** How long answered callers waited (answeredAt − startedAt): ring time plus any IVR. */
export function waitToAnswer(records: Iterable<Readonly<CdrRecord>>): WaitSummary {
  let n = 0;
  let sum = 0;
  let max: number | undefined;
  for (const rec of records) {
    if (!validTime(rec.answeredAt) || !validTime(rec.startedAt) || rec.answeredAt < rec.startedAt) continue;
    const wait = rec.answeredAt - rec.startedAt;
    n++;
    sum += wait;
    max = max === undefined || wait > max ? wait : max;
  }
  return { answered: n, averageMs: n === 0 ? undefined : Math.round(sum / n), maxMs: max };
}

export interface ProvinceRow extends CallCounts {
  /** 来电归属地 province, or 未知 (withheld number, extension, unknown prefix). */
  province: string;
}

/** Calls by the caller's province, busiest first (ties by name). */
export function callsByProvince(records: Iterable<Readonly<CdrRecord>>): ProvinceRow[] {
  const rows = new Map<string, ProvinceRow>();
  for (const rec of records) {
    const p = rec.callerRegion?.province;
    const province = typeof p === 'string' && p !== '' ? p : UNKNOWN_REGION;
    let row = rows.get(province);
    if (row === undefined) {
      row = { province, calls: 0, answered: 0, missed: 0 };
      rows.set(province, row);
    }
    count(row, rec);
  }
  return [...rows.values()].sort((a, b) => b.calls - a.calls || compare(a.province, b.province));
}

export interface TargetRow {
  /** Extension, or external number. */
  target: string;
  /** Times it was rung. */
  attempts: number;
  answered: number;
  /** Rung but not answered (busy, no answer, declined, unreachable, cancelled...). */
  unanswered: number;
}

/** The targets rung most often (from every attempt of every call), top `top` (default 10). */
export function busiestTargets(records: Iterable<Readonly<CdrRecord>>, options: { top?: number } = {}): TargetRow[] {
  const top = options.top ?? 10;
  if (!Number.isSafeInteger(top) || top < 1 || top > 10_000) throw new CdrError('DP_CDR_BAD_OPTION', `top must be an integer from 1 to 10000, got ${String(top)}`);
  const rows = new Map<string, TargetRow>();
  for (const rec of records) {
    if (!Array.isArray(rec.attempts)) continue;
    for (const a of rec.attempts) {
      if (typeof a?.target !== 'string') continue;
      let row = rows.get(a.target);
      if (row === undefined) {
        row = { target: a.target, attempts: 0, answered: 0, unanswered: 0 };
        rows.set(a.target, row);
      }
      row.attempts++;
      if (a.outcome === 'answered') row.answered++;
      else row.unanswered++;
    }
  }
  return [...rows.values()].sort((a, b) => b.attempts - a.attempts || compare(a.target, b.target)).slice(0, top);
}

/** Code-unit order: the same on every machine, unlike localeCompare. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
