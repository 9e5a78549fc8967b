/**
 * Wall-clock time of an instant in an IANA time zone, through Intl (no
 * time-zone data of our own). Reports bucket calls by the tenant's local
 * hour and day, and CSV timestamps carry the local offset, so that a call
 * at 00:30 in Shanghai counts for that day, not the previous UTC day.
 */
import { CdrError } from './cdr-error.js';

export const DEFAULT_TIME_ZONE = 'Asia/Shanghai';

export interface ZonedTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** Local minus UTC, in minutes (+480 for Asia/Shanghai). */
  offsetMinutes: number;
}

/** One formatter per zone: building one costs far more than formatting with it. */
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    if (typeof timeZone !== 'string' || timeZone.length === 0 || timeZone.length > 64) throw new CdrError('DP_CDR_BAD_TIME_ZONE', `not a time zone: ${String(timeZone)}`);
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
      });
    } catch {
      throw new CdrError('DP_CDR_BAD_TIME_ZONE', `unknown time zone: ${JSON.stringify(timeZone)}`);
    }
    // Bounded: names come from callers, and only valid ones get here.
    if (formatters.size < 500) formatters.set(timeZone, f);
  }
  return f;
}

/** Throws DP_CDR_BAD_TIME_ZONE unless Intl knows `timeZone`. */
export function assertTimeZone(timeZone: string): void {
  formatterFor(timeZone);
}

export function zonedTime(ms: number, timeZone: string): ZonedTime {
  const parts: Record<string, number> = {};
  for (const p of formatterFor(timeZone).formatToParts(ms)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const z = {
    year: parts.year ?? 1970, month: parts.month ?? 1, day: parts.day ?? 1,
    hour: parts.hour ?? 0, minute: parts.minute ?? 0, second: parts.second ?? 0,
  };
  const wholeSeconds = Math.floor(ms / 1000) * 1000;
  const offsetMinutes = Math.round((Date.UTC(z.year, z.month - 1, z.day, z.hour, z.minute, z.second) - wholeSeconds) / 60_000);
  return { ...z, offsetMinutes };
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** `2024-05-01` */
export function localDay(z: ZonedTime): string {
  return `${pad(z.year, 4)}-${pad(z.month)}-${pad(z.day)}`;
}

/** `2024-05-01 08` (the hour starting then) */
export function localHour(z: ZonedTime): string {
  return `${localDay(z)} ${pad(z.hour)}`;
}

/** ISO 8601 with the zone's offset: `2024-05-01T08:00:00+08:00`. */
export function isoLocal(ms: number, timeZone: string): string {
  const z = zonedTime(ms, timeZone);
  const sign = z.offsetMinutes < 0 ? '-' : '+';
  const off = Math.abs(z.offsetMinutes);
  return `${localDay(z)}T${pad(z.hour)}:${pad(z.minute)}:${pad(z.second)}${sign}${pad(Math.floor(off / 60))}:${pad(off % 60)}`;
}
