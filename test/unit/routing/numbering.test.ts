/** Chinese numbering plan: every usual written form normalises to one E.164 number and one national form. */
import t from 'tap';
import fc from 'fast-check';
import {
  formatNumber, normalizeNumber, normalizePrefix, numberKey, parseNumber, toE164, toNational, type NumberClass, type ParseOptions,
} from '../../../src/routing/numbering.js';

interface Row { input: string; opts?: ParseOptions; class: NumberClass; e164: string | undefined; national: string; areaCode?: string; emergency?: boolean }

const VALID: Row[] = [
  // mobiles, in every form carriers and people use
  { input: '+8613812345678', class: 'mobile', e164: '+8613812345678', national: '13812345678' },
  { input: '008613812345678', class: 'mobile', e164: '+8613812345678', national: '13812345678' },
  { input: '8613812345678', class: 'mobile', e164: '+8613812345678', national: '13812345678' },
  { input: '13812345678', class: 'mobile', e164: '+8613812345678', national: '13812345678' },
  { input: '013812345678', class: 'mobile', e164: '+8613812345678', national: '13812345678' },
  { input: '+86 138 1234 5678', class: 'mobile', e164: '+8613812345678', national: '13812345678' },
  { input: '138-1234-5678', class: 'mobile', e164: '+8613812345678', national: '13812345678' },
  { input: '19912345678', class: 'mobile', e164: '+8619912345678', national: '19912345678' },
  // Beijing: area code 10, 8-digit subscriber numbers
  { input: '01012345678', class: 'landline', e164: '+861012345678', national: '01012345678', areaCode: '10' },
  { input: '+861012345678', class: 'landline', e164: '+861012345678', national: '01012345678', areaCode: '10' },
  { input: '861012345678', class: 'landline', e164: '+861012345678', national: '01012345678', areaCode: '10' },
  { input: '00861012345678', class: 'landline', e164: '+861012345678', national: '01012345678', areaCode: '10' },
  { input: '010-1234 5678', class: 'landline', e164: '+861012345678', national: '01012345678', areaCode: '10' },
  // 02x: two-digit area codes (Shanghai 21, Guangzhou 20)
  { input: '02166668888', class: 'landline', e164: '+862166668888', national: '02166668888', areaCode: '21' },
  { input: '+86 20 8888 6666', class: 'landline', e164: '+862088886666', national: '02088886666', areaCode: '20' },
  // 0xxx: three-digit area codes with 8- or 7-digit subscriber numbers
  { input: '057188888888', class: 'landline', e164: '+8657188888888', national: '057188888888', areaCode: '571' },
  { input: '(0571) 8888-8888', class: 'landline', e164: '+8657188888888', national: '057188888888', areaCode: '571' },
  { input: '+8657188888888', class: 'landline', e164: '+8657188888888', national: '057188888888', areaCode: '571' },
  { input: '+86 0571 88888888', class: 'landline', e164: '+8657188888888', national: '057188888888', areaCode: '571' },
  { input: '07558888888', class: 'landline', e164: '+867558888888', national: '07558888888', areaCode: '755' },
  // a local number completed with the area code of the trunk or tenant
  { input: '88888888', opts: { defaultAreaCode: '571' }, class: 'landline', e164: '+8657188888888', national: '057188888888', areaCode: '571' },
  { input: '66668888', opts: { defaultAreaCode: '21' }, class: 'landline', e164: '+862166668888', national: '02166668888', areaCode: '21' },
  // 400/800 service numbers have an E.164 form
  { input: '4008123456', class: 'service', e164: '+864008123456', national: '4008123456' },
  { input: '400-812-3456', class: 'service', e164: '+864008123456', national: '4008123456' },
  { input: '+864008123456', class: 'service', e164: '+864008123456', national: '4008123456' },
  { input: '8008101234', class: 'service', e164: '+868008101234', national: '8008101234' },
  // short service numbers: national only
  { input: '95588', class: 'short-service', e164: undefined, national: '95588' },
  { input: '10086', class: 'short-service', e164: undefined, national: '10086' },
  { input: '12306', class: 'short-service', e164: undefined, national: '12306' },
  { input: '96110', class: 'short-service', e164: undefined, national: '96110' },
  { input: '114', class: 'short-service', e164: undefined, national: '114' },
  { input: '110', class: 'short-service', e164: undefined, national: '110', emergency: true },
  { input: '120', class: 'short-service', e164: undefined, national: '120', emergency: true },
  // internal codes: extensions and group short numbers
  { input: '1001', class: 'internal', e164: undefined, national: '1001' },
  { input: '6001', class: 'internal', e164: undefined, national: '6001' },
  { input: '801', class: 'internal', e164: undefined, national: '801' },
  // international
  { input: '+14155552671', class: 'international', e164: '+14155552671', national: '0014155552671' },
  { input: '0014155552671', class: 'international', e164: '+14155552671', national: '0014155552671' },
  { input: '+852 2123 4567', class: 'international', e164: '+85221234567', national: '0085221234567' },
];

t.test('valid numbers normalise to E.164 and national form', async (t) => {
  for (const row of VALID) {
    const r = parseNumber(row.input, row.opts);
    if (!r.ok) {
      t.fail(`${row.input}: ${r.error}`);
      continue;
    }
    t.equal(r.number.class, row.class, `${row.input} is ${row.class}`);
    t.equal(r.number.e164, row.e164, `${row.input} → ${String(row.e164)}`);
    t.equal(r.number.national, row.national, `${row.input} → national ${row.national}`);
    if (row.areaCode !== undefined) t.equal(r.number.areaCode, row.areaCode, `${row.input} area code ${row.areaCode}`);
    t.equal(r.number.emergency === true, row.emergency === true, `${row.input} emergency: ${String(row.emergency === true)}`);
  }
});

const INVALID: Array<[string, RegExp, ParseOptions?]> = [
  ['', /empty/],
  ['   ', /empty/],
  ['abc', /characters other than digits/],
  ['+', /empty/],
  ['138 1234 567a', /characters other than digits/],
  ['138123456789', /not a number of the Chinese numbering plan/],
  ['0101234567', /not a valid Chinese number/], // Beijing needs 8 digits after 010
  ['021123', /not a valid Chinese number/],
  ['88888888', /local number without an area code/],
  ['0', /not a valid Chinese number/],
  ['00', /not a valid international number|not a valid Chinese number/],
  ['+1234', /not a valid international number/],
  ['1', /not a number of the Chinese numbering plan/],
  ['123456789012345678901', /longer than any dialable number/],
  ['+860', /not a valid Chinese number/],
];

t.test('invalid numbers are refused with a reason, never thrown at on the hot path', async (t) => {
  for (const [input, reason, opts] of INVALID) {
    const r = parseNumber(input, opts);
    t.notOk(r.ok, `"${input}" is refused`);
    if (!r.ok) t.match(r.error, reason, `"${input}": ${r.error}`);
  }
});

t.test('the throwing variants carry DP_ROUTE_BAD_NUMBER', async (t) => {
  t.equal(toE164('0571-8888 8888'), '+8657188888888');
  t.equal(toNational('+8657188888888'), '057188888888');
  t.equal(toNational('+864008123456'), '4008123456');
  t.throws(() => normalizeNumber('88888888'), { name: 'RoutingError', code: 'DP_ROUTE_BAD_NUMBER' });
  t.throws(() => toE164('95588'), /has no E.164 form/);
});

t.test('formats for people and for gateways', async (t) => {
  const f = (n: string, format: Parameters<typeof formatNumber>[1]) => formatNumber(normalizeNumber(n), format);
  t.equal(f('13812345678', 'display'), '138 1234 5678');
  t.equal(f('01012345678', 'display'), '010-1234 5678');
  t.equal(f('057188888888', 'display'), '0571-8888 8888');
  t.equal(f('07558888888', 'display'), '0755-888 8888');
  t.equal(f('4008123456', 'display'), '400-812-3456');
  t.equal(f('13812345678', 'e164'), '+8613812345678');
  t.equal(f('13812345678', 'digits'), '8613812345678');
  t.equal(f('+8657188888888', 'national'), '057188888888');
  t.equal(f('95588', 'e164'), '95588', 'short numbers have no E.164: their digits in every format');
  t.equal(f('95588', 'digits'), '95588');
});

t.test('number keys keep national-only numbers out of the E.164 key space', async (t) => {
  t.equal(numberKey(normalizeNumber('13812345678')), '8613812345678');
  t.equal(numberKey(normalizeNumber('95588')), 'S95588');
  t.equal(numberKey(normalizeNumber('1001')), 'I1001');
  t.notOk(numberKey(normalizeNumber('95588')).startsWith('86955'), 'a Zhongwei (0955) prefix cannot match 95588');
});

t.test('prefixes normalise only from unambiguous forms', async (t) => {
  const ok: Array<[string, string]> = [
    ['+86571', '86571'], ['0086571', '86571'], ['0571', '86571'], ['010', '8610'], ['138', '86138'],
    ['1705', '861705'], ['1', '861'], ['400812', '86400812'], ['800', '86800'], ['+1415', '1415'], ['+86', '86'],
  ];
  for (const [input, want] of ok) t.equal(normalizePrefix(input), want, `${input} → ${want}`);
  for (const bad of ['88', '10', '0', '+0', 'abc', '95', '40', '']) {
    t.throws(() => normalizePrefix(bad), { name: 'RoutingError', code: 'DP_ROUTE_BAD_NUMBER' }, `"${bad}" refused`);
  }
});

t.test('property: every form of a mobile or landline gives the same number', async (t) => {
  const mobile = fc.tuple(fc.integer({ min: 3, max: 9 }), fc.stringMatching(/^\d{9}$/)).map(([d, rest]) => `1${d}${rest}`);
  fc.assert(fc.property(mobile, (m) => {
    const want = `+86${m}`;
    for (const form of [m, `+86${m}`, `86${m}`, `0086${m}`, `0${m}`, `${m.slice(0, 3)} ${m.slice(3, 7)} ${m.slice(7)}`]) {
      const r = parseNumber(form);
      if (!r.ok || r.number.e164 !== want || r.number.national !== m) return false;
    }
    return true;
  }));
  const landline = fc.oneof(
    fc.tuple(fc.constantFrom('10', '20', '21', '22', '25', '27', '28', '29'), fc.stringMatching(/^[2-8]\d{7}$/)),
    fc.tuple(fc.stringMatching(/^[3-9]\d\d$/).filter((a) => !/^[48]00$/.test(a)), fc.stringMatching(/^[2-8]\d{6,7}$/)),
  );
  fc.assert(fc.property(landline, ([area, sub]) => {
    const want = `+86${area}${sub}`;
    for (const form of [`0${area}${sub}`, `+86${area}${sub}`, `86${area}${sub}`, `0${area}-${sub}`, sub]) {
      const r = parseNumber(form, { defaultAreaCode: area });
      if (!r.ok || r.number.e164 !== want || r.number.areaCode !== area || r.number.national !== `0${area}${sub}`) return false;
    }
    return true;
  }));
  t.pass('held for the generated numbers');
});
