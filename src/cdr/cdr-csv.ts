/**
 * CSV export of CDRs (话单导出), RFC 4180: CRLF line ends, a field quoted
 * when it holds `"`, `,`, CR or LF, quotes doubled. UTF-8; the optional
 * BOM makes Excel on Windows read Chinese text as UTF-8 rather than GBK.
 *
 * Spreadsheet formula injection: a caller number comes from a carrier or a
 * phone, so a "number" like `=HYPERLINK(...)` must not become a formula when
 * the file is opened. Fields starting with `=`, `@`, TAB or CR get a leading
 * `'`; `+` and `-` only when the rest is not a plain number, so `+86...`
 * stays a number.
 */
import type { CdrRecord, CdrStore } from '../store/cdr-store.js';
import { iterateCdrs, type CdrSelection, type PagesResult } from './cdr-pages.js';
import { DEFAULT_TIME_ZONE, assertTimeZone, isoLocal } from './time-zone.js';

export const CDR_CSV_COLUMNS = [
  'call_id', 'tenant', 'origin', 'called', 'caller', 'caller_province', 'caller_city',
  'started_at', 'ringing_at', 'answered_at', 'ended_at', 'wait_seconds', 'talk_seconds',
  'disposition', 'final_status', 'ended_by', 'route', 'rule', 'targets',
] as const;

export interface CsvOptions {
  /** Time zone of the timestamps (default Asia/Shanghai). */
  timeZone?: string;
  /** Prepend U+FEFF (default false). */
  bom?: boolean;
}

const NEEDS_QUOTES = /[",\r\n]/;
const PLAIN_NUMBER = /^[+-][\d\s().-]*$/;

export function csvField(value: string): string {
  let v = value;
  const first = v.charAt(0);
  if (first === '=' || first === '@' || first === '\t' || first === '\r' || ((first === '+' || first === '-') && !PLAIN_NUMBER.test(v))) v = `'${v}`;
  return NEEDS_QUOTES.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

const text = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : '');

function time(ms: unknown, timeZone: string): string {
  return typeof ms === 'number' && Number.isFinite(ms) ? isoLocal(ms, timeZone) : '';
}

function seconds(from: unknown, to: unknown): string {
  return typeof from === 'number' && typeof to === 'number' && to >= from ? ((to - from) / 1000).toFixed(1) : '';
}

export function cdrCsvHeader(): string {
  return `${CDR_CSV_COLUMNS.join(',')}\r\n`;
}

/** One line (with its CRLF). Missing or odd fields become empty cells, never an exception. */
export function cdrCsvRow(rec: Readonly<CdrRecord>, timeZone = DEFAULT_TIME_ZONE): string {
  const origin = rec.origin?.kind === 'trunk' ? `trunk:${text(rec.origin.trunk)}` : rec.origin?.kind === 'extension' ? `extension:${text(rec.origin.extension)}` : '';
  const targets = Array.isArray(rec.attempts) ? rec.attempts.map((a) => `${text(a?.target)}:${text(a?.outcome)}`).join(';') : '';
  const cells = [
    text(rec.callId), text(rec.tenant), origin, text(rec.called), text(rec.caller),
    text(rec.callerRegion?.province), text(rec.callerRegion?.city),
    time(rec.startedAt, timeZone), time(rec.ringingAt, timeZone), time(rec.answeredAt, timeZone), time(rec.endedAt, timeZone),
    seconds(rec.startedAt, rec.answeredAt), seconds(rec.answeredAt, rec.endedAt),
    text(rec.disposition), text(rec.finalStatus), text(rec.endedBy), text(rec.route), text(rec.rule), targets,
  ];
  return `${cells.map(csvField).join(',')}\r\n`;
}

/** A whole CSV document of `records`, in the order given. */
export function cdrsToCsv(records: Iterable<Readonly<CdrRecord>>, options: CsvOptions = {}): string {
  const timeZone = options.timeZone ?? DEFAULT_TIME_ZONE;
  assertTimeZone(timeZone);
  let out = options.bom ? '\uFEFF' : '';
  out += cdrCsvHeader();
  for (const r of records) out += cdrCsvRow(r, timeZone);
  return out;
}

/**
 * Streams the CSV of a selection, newest first, one chunk per store page
 * (for `Readable.from()` into an HTTP reply). At most `maxRows` rows;
 * `result.truncated` says whether the selection had more.
 */
export async function* exportCdrCsv(
  store: CdrStore, selection: CdrSelection, options: CsvOptions & { maxRows?: number } = {}, result: PagesResult = { truncated: false },
): AsyncGenerator<string> {
  const timeZone = options.timeZone ?? DEFAULT_TIME_ZONE;
  // Checked before the header goes out: an HTTP reply cannot turn into a 400 afterwards.
  assertTimeZone(timeZone);
  const pages = iterateCdrs(store, selection, options.maxRows, result);
  const first = await pages.next();
  yield (options.bom ? '\uFEFF' : '') + cdrCsvHeader();
  if (first.done === true) return;
  let chunk = '';
  for (const r of first.value) chunk += cdrCsvRow(r, timeZone);
  yield chunk;
  for await (const page of pages) {
    chunk = '';
    for (const r of page) chunk += cdrCsvRow(r, timeZone);
    yield chunk;
  }
}
