/**
 * Is a moment inside a schedule? Weekly windows in the schedule's time
 * zone, holidays (closed all day) and make-up workdays (调休: a day off that
 * is worked, with the windows of another weekday).
 *
 * Wall-clock conversion uses Intl.DateTimeFormat, which carries the IANA
 * zone rules (DST included) and is pure. formatToParts costs microseconds,
 * so UTC offsets are cached per zone: per UTC hour when the offset is the
 * same at both ends of the hour (no zone changes offset twice within an
 * hour), otherwise, in the hour of a transition, per UTC minute (zones
 * change offset on whole minutes).
 *
 * Semantics at the edges:
 * - a window is [from, to): 09:00-18:00 is open at 09:00, closed at 18:00;
 * - `to` ≤ `from` crosses midnight: fri 22:00-02:00 is open Fri 22:00 to
 *   Sat 02:00; the part after midnight belongs to the day the window starts;
 * - a holiday closes its whole calendar day, including the after-midnight
 *   tail of the previous day's window, and a holiday's own windows do not
 *   open (so do not spill into the next day either);
 * - a make-up workday uses the windows of its `as` weekday (default Monday)
 *   instead of its own, tail after midnight included;
 * - local times that do not exist (the hour skipped when DST starts) are
 *   never seen: the instant maps to the wall clock after the jump; local
 *   times that occur twice (DST end) are inside a window both times.
 */
import { RoutingError } from './errors.js';
import type { Schedule, Weekday } from './model.js';

export const DEFAULT_TIME_ZONE = 'Asia/Shanghai';
const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;

/** Index as Date#getUTCDay counts: Sunday 0. */
const WEEKDAY_INDEX: Readonly<Record<Weekday, number>> = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };
const WEEKDAY_NAME: readonly Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

interface Window {
  readonly from: number;
  readonly to: number;
  readonly crossesMidnight: boolean;
  readonly text: string;
}

export interface CompiledSchedule {
  readonly id: string;
  readonly timeZone: string;
  /** Windows by weekday index (Sunday 0). */
  readonly byWeekday: ReadonlyArray<readonly Window[]>;
  /** Local day number (days since 1970-01-01) → holiday name. */
  readonly holidays: ReadonlyMap<number, string>;
  /** Local day number → weekday whose windows apply, and the make-up day's name. */
  readonly makeup: ReadonlyMap<number, { weekday: number; name: string }>;
}

export interface WallClock {
  /** Days since 1970-01-01 in the zone. */
  day: number;
  /** Minutes since local midnight, 0-1439. */
  minute: number;
  /** Sunday 0 ... Saturday 6. */
  weekday: number;
}

export type ScheduleStatus =
  | { open: true; why: 'window' | 'previous-day-window' | 'makeup-window'; window: string; local: WallClock; makeup?: string }
  | { open: false; why: 'holiday'; holiday: string; local: WallClock }
  | { open: false; why: 'outside'; local: WallClock; makeup?: string };

/** Throws RoutingError if the zone or a date is invalid (references.ts reports these with paths first). */
export function compileSchedule(doc: Schedule, defaultZone: string = DEFAULT_TIME_ZONE): CompiledSchedule {
  const timeZone = doc.timeZone ?? defaultZone;
  assertTimeZone(timeZone);
  const byWeekday: Window[][] = [[], [], [], [], [], [], []];
  for (const w of doc.weekly) {
    const from = parseClock(w.from);
    const to = parseClock(w.to);
    if (from === 1440) throw new RoutingError('DP_ROUTE_REFERENCE', `schedule ${doc.id}: a window cannot start at 24:00`);
    if (from === to) throw new RoutingError('DP_ROUTE_REFERENCE', `schedule ${doc.id}: window ${w.from}-${w.to} is empty`);
    const crossesMidnight = to < from;
    for (const d of w.days) byWeekday[WEEKDAY_INDEX[d]]?.push({ from, to, crossesMidnight, text: `${d} ${w.from}-${w.to}` });
  }
  const holidays = new Map<number, string>();
  for (const h of doc.holidays ?? []) {
    const first = dayNumber(h.date);
    const last = h.to !== undefined ? dayNumber(h.to) : first;
    if (last < first || last - first > 366) throw new RoutingError('DP_ROUTE_REFERENCE', `schedule ${doc.id}: holiday ${h.date}..${h.to ?? ''} is not a range of at most a year`);
    for (let d = first; d <= last; d++) holidays.set(d, h.name ?? 'holiday');
  }
  const makeup = new Map<number, { weekday: number; name: string }>();
  for (const m of doc.makeupWorkdays ?? []) {
    makeup.set(dayNumber(m.date), { weekday: WEEKDAY_INDEX[m.as ?? 'mon'], name: m.name ?? 'make-up workday' });
  }
  return { id: doc.id, timeZone, byWeekday, holidays, makeup };
}

/** Fast path: is `time` (epoch ms) inside the schedule? */
export function isOpen(s: CompiledSchedule, time: number): boolean {
  return scheduleStatus(s, time).open;
}

export function scheduleStatus(s: CompiledSchedule, time: number): ScheduleStatus {
  const local = wallClock(s.timeZone, time);
  const m = local.minute;
  const holiday = s.holidays.get(local.day);
  if (holiday !== undefined) return { open: false, why: 'holiday', holiday, local };

  const todayMakeup = s.makeup.get(local.day);
  const today = todayMakeup?.weekday ?? local.weekday;
  for (const w of s.byWeekday[today] ?? []) {
    if (w.crossesMidnight ? m >= w.from : m >= w.from && m < w.to) {
      return todayMakeup
        ? { open: true, why: 'makeup-window', window: w.text, local, makeup: todayMakeup.name }
        : { open: true, why: 'window', window: w.text, local };
    }
  }
  // The after-midnight tail of yesterday's windows, unless yesterday was a holiday.
  const yesterday = local.day - 1;
  if (!s.holidays.has(yesterday)) {
    const prev = s.makeup.get(yesterday)?.weekday ?? (local.weekday + 6) % 7;
    for (const w of s.byWeekday[prev] ?? []) {
      if (w.crossesMidnight && m < w.to) return { open: true, why: 'previous-day-window', window: w.text, local };
    }
  }
  return todayMakeup ? { open: false, why: 'outside', local, makeup: todayMakeup.name } : { open: false, why: 'outside', local };
}

/** One line for explanations: `open: 2025-01-06 mon 10:15 Asia/Shanghai inside mon 09:00-18:00`. */
export function describeScheduleStatus(s: CompiledSchedule, st: ScheduleStatus): string {
  const when = `${formatDay(st.local.day)} ${WEEKDAY_NAME[st.local.weekday] ?? '?'} ${formatMinute(st.local.minute)} ${s.timeZone}`;
  if (st.open) {
    if (st.why === 'makeup-window') return `open: ${when} is make-up workday "${st.makeup ?? ''}", inside ${st.window}`;
    if (st.why === 'previous-day-window') return `open: ${when} is inside ${st.window} (started the day before)`;
    return `open: ${when} is inside ${st.window}`;
  }
  if (st.why === 'holiday') return `closed: ${when} is holiday "${st.holiday}"`;
  return st.makeup !== undefined ? `closed: ${when} is make-up workday "${st.makeup}" but outside its windows` : `closed: ${when} is outside every window`;
}

interface ZoneCache {
  readonly fmt: Intl.DateTimeFormat;
  /** UTC hour → offset (ms), or null when the offset changes inside that hour. */
  readonly hours: Map<number, number | null>;
  /** UTC minute → offset (ms), only for hours with a transition. */
  readonly minutes: Map<number, number>;
}
/** Bound on each cache; cleared when full (a week of hours, a few transition hours). */
const CACHE_MAX = 4096;
const HOUR_MS = 3_600_000;
const zones = new Map<string, ZoneCache>();

function zoneCache(zone: string): ZoneCache {
  let z = zones.get(zone);
  if (!z) {
    z = {
      fmt: new Intl.DateTimeFormat('en-US', {
        timeZone: zone, hourCycle: 'h23',
        year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
      }),
      hours: new Map(),
      minutes: new Map(),
    };
    zones.set(zone, z);
  }
  return z;
}

/** Throws RoutingError unless Intl knows the zone. */
export function assertTimeZone(zone: string): void {
  try {
    zoneCache(zone);
  } catch {
    throw new RoutingError('DP_ROUTE_REFERENCE', `unknown time zone "${zone}"`);
  }
}

/** Offset of the zone from UTC at `time`, in ms (Asia/Shanghai: +8 h). */
export function zoneOffsetMs(zone: string, time: number): number {
  const z = zoneCache(zone);
  const hour = Math.floor(time / HOUR_MS);
  let perHour = z.hours.get(hour);
  if (perHour === undefined) {
    const start = computeOffset(z.fmt, hour * HOUR_MS);
    const end = computeOffset(z.fmt, hour * HOUR_MS + HOUR_MS - 1);
    perHour = start === end ? start : null;
    if (z.hours.size >= CACHE_MAX) z.hours.clear();
    z.hours.set(hour, perHour);
  }
  if (perHour !== null) return perHour;
  const minute = Math.floor(time / MINUTE_MS);
  let perMinute = z.minutes.get(minute);
  if (perMinute === undefined) {
    perMinute = computeOffset(z.fmt, minute * MINUTE_MS);
    if (z.minutes.size >= CACHE_MAX) z.minutes.clear();
    z.minutes.set(minute, perMinute);
  }
  return perMinute;
}

function computeOffset(fmt: Intl.DateTimeFormat, time: number): number {
  let year = 0, month = 1, day = 1, hour = 0, min = 0, sec = 0;
  for (const p of fmt.formatToParts(time)) {
    switch (p.type) {
      case 'year': year = Number(p.value); break;
      case 'month': month = Number(p.value); break;
      case 'day': day = Number(p.value); break;
      case 'hour': hour = Number(p.value) % 24; break;
      case 'minute': min = Number(p.value); break;
      case 'second': sec = Number(p.value); break;
      default: break;
    }
  }
  return Date.UTC(year, month - 1, day, hour, min, sec) - Math.floor(time / 1000) * 1000;
}

export function wallClock(zone: string, time: number): WallClock {
  const local = time + zoneOffsetMs(zone, time);
  const day = Math.floor(local / DAY_MS);
  const minute = Math.floor((local - day * DAY_MS) / MINUTE_MS);
  return { day, minute, weekday: (((day + 4) % 7) + 7) % 7 };
}

/** `YYYY-MM-DD` → days since 1970-01-01; throws on dates that do not exist (2025-02-30). */
export function dayNumber(date: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) throw new RoutingError('DP_ROUTE_REFERENCE', `"${date}" is not a YYYY-MM-DD date`);
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const ms = Date.UTC(y, mo - 1, d);
  const back = new Date(ms);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) {
    throw new RoutingError('DP_ROUTE_REFERENCE', `${date} is not a calendar date`);
  }
  return ms / DAY_MS;
}

function parseClock(t: string): number {
  const m = /^(\d{2}):(\d{2})$/.exec(t);
  if (!m) throw new RoutingError('DP_ROUTE_REFERENCE', `"${t}" is not HH:MM`);
  const minutes = Number(m[1]) * 60 + Number(m[2]);
  if (minutes > 1440) throw new RoutingError('DP_ROUTE_REFERENCE', `"${t}" is past 24:00`);
  return minutes;
}

function formatDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

function formatMinute(m: number): string {
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
}
