/**
 * Chinese numbering plan (country code 86, international prefix 00, trunk
 * prefix 0): read a number in any of the forms carriers, phones and people
 * write it, classify it, and format it as E.164 or in national form.
 *
 * Structure relied on (MIIT numbering plan):
 * - mobiles: 11 digits `1[3-9]x xxxx xxxx`, no area code; callers on a
 *   landline in another area may dial them with the trunk prefix (`0138...`);
 * - landlines: trunk prefix 0, then the area code, then the subscriber number.
 *   Beijing is `10`, the big cities `2x` (Shanghai 21, Guangzhou 20...), both
 *   followed by 8 digits; every other area code has 3 digits (`571` Hangzhou,
 *   `755` Shenzhen) followed by 7 or 8 digits. So dialled with the trunk 0,
 *   area codes look like 010, 02x or 0xxx;
 * - 400/800: 10-digit national service numbers (400 is shared cost and
 *   inbound only, 800 freephone); they have an E.164 form (+86 400...);
 * - short service numbers: 95xxx (national, e.g. 95588), 96xxx (local),
 *   1xx (114, and the emergency numbers 110/119/120/122), 1[0-2]xxx (10086,
 *   12306, 12345...). They exist only inside the national network: no E.164.
 * - anything else of 2-6 digits is an internal code: an extension or a
 *   group short number, meaningful only inside one tenant.
 *
 * Pure: no I/O, no locale data. Which province or city a number belongs to
 * (来电归属地) is not derivable from the structure; it is a routing fact.
 */
import { RoutingError } from './errors.js';

export type NumberClass =
  /** 1[3-9]x xxxx xxxx */
  | 'mobile'
  /** area code + subscriber number */
  | 'landline'
  /** 400 / 800 ten-digit national service numbers (have an E.164 form) */
  | 'service'
  /** 95xxx, 96xxx, 1xx, 1[0-2]xxx: national-only short numbers, incl. emergency */
  | 'short-service'
  /** 2-6 digit code that only means something inside a tenant (extension, group short number) */
  | 'internal'
  /** any number outside +86 */
  | 'international';

export interface PhoneNumber {
  readonly class: NumberClass;
  /** `+<country><national significant number>`; undefined for short-service and internal codes. */
  readonly e164: string | undefined;
  /**
   * What a caller in mainland China dials: `13812345678`, `057188888888`,
   * `01012345678`, `4008123456`, `95588`, `1001`, and `00` + the E.164
   * digits for international numbers.
   */
  readonly national: string;
  /** Landlines: area code without the trunk 0 (`10`, `21`, `571`). */
  readonly areaCode?: string;
  /** Landlines: the local subscriber number. */
  readonly subscriber?: string;
  /** 110, 112, 119, 120, 122: must always reach the carrier, never a tenant's internal code. */
  readonly emergency?: boolean;
}

export type NumberParse = { ok: true; number: PhoneNumber } | { ok: false; error: string };

export interface ParseOptions {
  /**
   * Area code (without trunk 0) that completes a local 7-8 digit landline
   * number dialled or delivered without one, e.g. a carrier trunk in Hangzhou
   * delivering `88888888` means `0571 88888888`.
   */
  defaultAreaCode?: string;
}

const MOBILE = /^1[3-9]\d{9}$/;
const SERVICE_400_800 = /^[48]00\d{7}$/;
const EMERGENCY = new Set(['110', '112', '119', '120', '122']);
/** 1xx special services, 1[0-2]xxx carrier and public services (10086, 12306, 11185), 95/96 service numbers. */
const SHORT_SERVICE = /^(?:1\d{2}|1[0-2]\d{3}|9[56]\d{3,6})$/;
const INTERNAL = /^[1-9]\d{1,5}$/;
/** Separators people and RFC 3966 visual separators put in numbers: `010-1234 5678`, `(0571) 8888.8888`. */
const VISUAL = /[\s\-.()]/g;
const AREA_CODE = /^(?:10|2\d|[3-9]\d\d)$/;

/** Reads `input` in any usual form; never throws (hot path: one call per call setup). */
export function parseNumber(input: string, opts: ParseOptions = {}): NumberParse {
  const cleaned = input.trim().replace(VISUAL, '');
  const plus = cleaned.startsWith('+');
  const digits = plus ? cleaned.slice(1) : cleaned;
  if (digits.length === 0) return fail('empty number');
  if (!/^\d+$/.test(digits)) return fail(`"${input}" contains characters other than digits, a leading + and separators`);
  if (digits.length > 20) return fail(`"${input}" is longer than any dialable number`);

  if (plus) return international(digits, input);
  if (digits.startsWith('00')) return international(digits.slice(2), input);
  if (digits.startsWith('0')) return chinese(digits.slice(1), input);
  // 86 + national significant number: the NSN has at least 10 digits (2+8 or
  // 3+7), so 12+ digits starting with 86 cannot be a national dialled form
  // (those start with 0, 1, 400/800, 95/96, or are 7-8 digit local numbers).
  if (digits.startsWith('86') && digits.length >= 12) return chinese(digits.slice(2), input);
  if (MOBILE.test(digits)) return ok({ class: 'mobile', e164: `+86${digits}`, national: digits });
  if (SERVICE_400_800.test(digits)) return ok({ class: 'service', e164: `+86${digits}`, national: digits });
  if (SHORT_SERVICE.test(digits)) return ok(shortService(digits));
  if (/^[2-9]\d{6,7}$/.test(digits)) {
    const area = opts.defaultAreaCode;
    if (area === undefined) return fail(`"${input}" is a local number without an area code`);
    if (!AREA_CODE.test(area)) return fail(`default area code "${area}" is not an area code`);
    return landline(area, digits, input);
  }
  if (INTERNAL.test(digits)) return ok({ class: 'internal', e164: undefined, national: digits });
  return fail(`"${input}" is not a number of the Chinese numbering plan`);
}

/** Like parseNumber, for configuration: throws a coded error naming the input. */
export function normalizeNumber(input: string, opts: ParseOptions = {}): PhoneNumber {
  const r = parseNumber(input, opts);
  if (!r.ok) throw new RoutingError('DP_ROUTE_BAD_NUMBER', r.error);
  return r.number;
}

/** `+8613812345678` for anything with an E.164 form; throws for short and internal numbers. */
export function toE164(input: string, opts: ParseOptions = {}): string {
  const n = normalizeNumber(input, opts);
  if (n.e164 === undefined) throw new RoutingError('DP_ROUTE_BAD_NUMBER', `"${input}" is a ${n.class} number and has no E.164 form`);
  return n.e164;
}

/** The national dialling form: `13812345678`, `057188888888`, `4008123456`, `95588`, `0014155550100`. */
export function toNational(input: string, opts: ParseOptions = {}): string {
  return normalizeNumber(input, opts).national;
}

export type NumberFormat = 'e164' | 'national' | 'digits' | 'display';

/**
 * Formats a parsed number:
 * - `e164`: `+8613812345678` (short and internal numbers: their digits);
 * - `digits`: E.164 without the plus, as many carrier trunks want it;
 * - `national`: see PhoneNumber.national;
 * - `display`: grouped for people, `138 1234 5678`, `010-1234 5678`, `0571-8888 8888`, `400-812-3456`.
 */
export function formatNumber(n: PhoneNumber, format: NumberFormat): string {
  switch (format) {
    case 'e164': return n.e164 ?? n.national;
    case 'digits': return n.e164 !== undefined ? n.e164.slice(1) : n.national;
    case 'national': return n.national;
    case 'display': return display(n);
  }
}

/**
 * Identity of a number in lookup tables: E.164 digits without the plus
 * (`8613812345678`) when the number has one, otherwise `S` + the national
 * digits for short service numbers (`S95588`) and `I` + digits for internal
 * codes. The letters keep national-only numbers out of digit tries, where a
 * prefix such as `86955` (Zhongwei, Ningxia) must not match 95588.
 */
export function numberKey(n: PhoneNumber): string {
  if (n.e164 !== undefined) return n.e164.slice(1);
  return (n.class === 'internal' ? 'I' : 'S') + n.national;
}

/**
 * Normalises a number prefix (DID blocks, blacklist and region-override
 * prefixes, gateway destinations, mobile segments) to E.164 digits without
 * the plus. Accepted forms are the unambiguous ones:
 * `+86571`, `0086571`, `0571` (trunk 0 + area code), `138`/`1705` (mobile
 * segments), `400812` (400/800, at least `400`/`800`). A bare prefix such as
 * `88` could be the start of a local number in any city, so it is refused.
 */
export function normalizePrefix(input: string): string {
  const cleaned = input.trim().replace(VISUAL, '');
  const bad = (why: string): never => { throw new RoutingError('DP_ROUTE_BAD_NUMBER', `prefix "${input}" ${why}`); };
  const plus = cleaned.startsWith('+');
  const digits = plus ? cleaned.slice(1) : cleaned;
  if (!/^\d+$/.test(digits)) return bad('must contain only digits after an optional +');
  let e164: string;
  if (plus) e164 = digits;
  else if (digits.startsWith('00')) e164 = digits.slice(2);
  else if (digits.startsWith('0')) {
    if (digits.length < 2) return bad('needs at least one digit after the trunk prefix 0');
    e164 = `86${digits.slice(1)}`;
  } else if (/^1(?:[3-9]\d*)?$/.test(digits) && digits.length <= 11) e164 = `86${digits}`;
  else if (/^[48]00/.test(digits) && digits.length <= 10) e164 = `86${digits}`;
  else return bad('is ambiguous: write it as +86…, 0 + area code…, a mobile segment (13…) or 400…/800…');
  if (!/^[1-9]/.test(e164)) return bad('does not start with a country code');
  if (e164.length > 15) return bad('is longer than an E.164 number');
  return e164;
}

function international(digits: string, input: string): NumberParse {
  if (digits.startsWith('86')) return chinese(digits.slice(2), input);
  if (!/^[1-9]\d{6,14}$/.test(digits)) return fail(`"${input}" is not a valid international number`);
  return ok({ class: 'international', e164: `+${digits}`, national: `00${digits}` });
}

/** National significant number (after +86, or after the trunk prefix 0). */
function chinese(nsn: string, input: string): NumberParse {
  // "+86 0571 ..." is wrong but common in caller IDs from some carriers: the
  // trunk prefix 0 never belongs after the country code, so drop it.
  if (nsn.startsWith('0') && !nsn.startsWith('00')) nsn = nsn.slice(1);
  if (MOBILE.test(nsn)) return ok({ class: 'mobile', e164: `+86${nsn}`, national: nsn });
  if (SERVICE_400_800.test(nsn)) return ok({ class: 'service', e164: `+86${nsn}`, national: nsn });
  let m = /^(10|2\d)(\d{8})$/.exec(nsn);
  if (!m) m = /^([3-9]\d\d)(\d{7,8})$/.exec(nsn);
  if (m) return landline(m[1] as string, m[2] as string, input);
  return fail(`"${input}" is not a valid Chinese number (mobile 1[3-9]+9 digits, area code 10/2x + 8 digits, 3-digit area code + 7-8 digits, 400/800 + 7 digits)`);
}

function landline(area: string, subscriber: string, input: string): NumberParse {
  if (area.length === 2 && subscriber.length !== 8) return fail(`"${input}": numbers in area ${area} have 8 digits after the area code`);
  return ok({ class: 'landline', e164: `+86${area}${subscriber}`, national: `0${area}${subscriber}`, areaCode: area, subscriber });
}

function shortService(digits: string): PhoneNumber {
  return EMERGENCY.has(digits)
    ? { class: 'short-service', e164: undefined, national: digits, emergency: true }
    : { class: 'short-service', e164: undefined, national: digits };
}

function display(n: PhoneNumber): string {
  const d = n.national;
  switch (n.class) {
    case 'mobile': return `${d.slice(0, 3)} ${d.slice(3, 7)} ${d.slice(7)}`;
    case 'landline': {
      const sub = n.subscriber ?? '';
      const split = sub.length === 8 ? 4 : 3;
      return `0${n.areaCode ?? ''}-${sub.slice(0, split)} ${sub.slice(split)}`;
    }
    case 'service': return `${d.slice(0, 3)}-${d.slice(3, 6)}-${d.slice(6)}`;
    case 'international': return n.e164 ?? d;
    case 'short-service':
    case 'internal':
      return d;
  }
}

function ok(number: PhoneNumber): NumberParse {
  return { ok: true, number };
}

function fail(error: string): NumberParse {
  return { ok: false, error };
}
