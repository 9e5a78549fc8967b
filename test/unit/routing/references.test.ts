/** Cross-reference checks: what the schema cannot see, each problem reported at its field. */
import t from 'tap';
import type { ValidationIssue } from '../../../src/routing/errors.js';
import type { TenantDocument } from '../../../src/routing/model.js';
import { checkTenantReferences } from '../../../src/routing/references.js';
import { validateTenant } from '../../../src/routing/validate.js';
import { ext, route, tenantDoc } from './fixtures.js';

const A0 = '/routes/0/rules/0/actions/0';

const CASES: Array<{ name: string; doc: TenantDocument; path: string; message: RegExp }> = [
  { name: 'ring a missing extension', doc: tenantDoc({ routes: [route('main', [{ kind: 'ring', targets: [{ extension: '1001' }, { extension: '1009' }] }])] }), path: `${A0}/targets/1/extension`, message: /extension 1009 does not exist/ },
  { name: 'ring a missing group', doc: tenantDoc({ routes: [route('main', [{ kind: 'ringGroup', group: 'sales' }])] }), path: `${A0}/group`, message: /group "sales" does not exist/ },
  { name: 'group member missing', doc: tenantDoc({ groups: [{ id: 'g', strategy: 'sequential', members: [{ extension: '1001' }, { extension: '2001' }] }] }), path: '/groups/0/members/1/extension', message: /extension 2001 does not exist/ },
  { name: 'IVR menu missing', doc: tenantDoc({ routes: [route('main', [{ kind: 'ivr', menu: 'welcome' }])] }), path: `${A0}/menu`, message: /IVR menu "welcome" does not exist/ },
  { name: 'number points to a missing route', doc: tenantDoc({ numbers: [{ number: '4008123456', route: 'hotline' }] }), path: '/numbers/0/route', message: /route "hotline" does not exist/ },
  { name: 'forward to a missing route', doc: tenantDoc({ routes: [route('main', [{ kind: 'forward', route: 'night' }])] }), path: `${A0}/route`, message: /route "night" does not exist/ },
  { name: 'condition on a missing schedule', doc: tenantDoc({ routes: [{ id: 'main', rules: [{ id: 'r', when: { schedule: { id: 'office', inside: true } }, actions: [{ kind: 'voicemail', box: 'v' }] }] }] }), path: '/routes/0/rules/0/when/schedule/id', message: /schedule "office" does not exist/ },
  { name: 'extension route missing', doc: tenantDoc({ extensions: [ext('1001', { route: 'fwd' })] }), path: '/extensions/0/route', message: /route "fwd" does not exist/ },
  { name: 'IVR menu route missing', doc: tenantDoc({ ivrMenus: [{ id: 'm', prompt: 'p', route: 'menu-choice' }] }), path: '/ivrMenus/0/route', message: /route "menu-choice" does not exist/ },
  { name: 'duplicate extension', doc: tenantDoc({ extensions: [ext('1001'), ext('1001')], routes: [route('main', [{ kind: 'voicemail', box: 'v' }])] }), path: '/extensions/1', message: /duplicate extension "1001" \(also \/extensions\/0\)/ },
  { name: 'duplicate SIP user name', doc: tenantDoc({ extensions: [ext('1001'), ext('1002', { sip: { username: '1001', ha1Md5: '0'.repeat(32), ha1Sha256: '0'.repeat(64) } })] }), path: '/extensions/1/sip/username', message: /duplicate SIP user name "1001"/ },
  { name: 'duplicate route id', doc: tenantDoc({ routes: [route('main', [{ kind: 'voicemail', box: 'v' }]), route('main', [{ kind: 'voicemail', box: 'w' }])] }), path: '/routes/1', message: /duplicate route "main"/ },
  { name: 'duplicate rule id', doc: tenantDoc({ routes: [{ id: 'main', rules: [{ id: 'r', actions: [{ kind: 'voicemail', box: 'v' }] }, { id: 'r', actions: [{ kind: 'voicemail', box: 'v' }] }] }] }), path: '/routes/0/rules/1', message: /duplicate rule of route "main" "r"/ },
  { name: 'same number written twice', doc: tenantDoc({ numbers: [{ number: '4008123456', route: 'main' }, { number: '+864008123456', route: 'main' }] }), path: '/numbers/1/number', message: /\+864008123456 is already \/numbers\/0/ },
  { name: 'same prefix twice', doc: tenantDoc({ numbers: [{ prefix: '0571888', route: 'main' }, { prefix: '+86571888', route: 'main' }] }), path: '/numbers/1/prefix', message: /already \/numbers\/0/ },
  { name: 'ambiguous prefix', doc: tenantDoc({ numbers: [{ prefix: '888', route: 'main' }] }), path: '/numbers/0/prefix', message: /ambiguous/ },
  { name: 'partially overlapping ranges', doc: tenantDoc({ numbers: [{ range: { from: '057188881000', to: '057188881599' }, route: 'main' }, { range: { from: '057188881500', to: '057188881999' }, route: 'main' }] }), path: '/numbers/1/range', message: /overlaps \/numbers\/0 partially/ },
  { name: 'identical ranges', doc: tenantDoc({ numbers: [{ range: { from: '057188881000', to: '057188881999' }, route: 'main' }, { range: { from: '+8657188881000', to: '+8657188881999' }, route: 'main' }] }), path: '/numbers/1/range', message: /same range as \/numbers\/0/ },
  { name: 'range of different lengths', doc: tenantDoc({ numbers: [{ range: { from: '05718888100', to: '057188881999' }, route: 'main' }] }), path: '/numbers/0/range', message: /different lengths/ },
  { name: 'reversed range', doc: tenantDoc({ numbers: [{ range: { from: '057188881999', to: '057188881000' }, route: 'main' }] }), path: '/numbers/0/range', message: /is after/ },
  { name: 'range of short numbers', doc: tenantDoc({ numbers: [{ range: { from: '95500', to: '95599' }, route: 'main' }] }), path: '/numbers/0/range', message: /E.164/ },
  { name: 'internal code as a public number', doc: tenantDoc({ numbers: [{ number: '1001', route: 'main' }] }), path: '/numbers/0/number', message: /internal code, not a public number/ },
  { name: 'local number without area code', doc: tenantDoc({ numbers: [{ number: '88888888', route: 'main' }] }), path: '/numbers/0/number', message: /without an area code/ },
  { name: 'extension shadows a service number', doc: tenantDoc({ extensions: [ext('10086')], routes: [route('main', [{ kind: 'voicemail', box: 'v' }])] }), path: '/extensions/0/number', message: /shadow the public service number 10086/ },
  { name: 'extension equals a short code', doc: tenantDoc({ shortNumberPlans: [{ id: 'p', members: [{ code: '1002', extension: '1001' }] }] }), path: '/extensions/1/number', message: /equals a group short code/ },
  { name: 'short code is an emergency number', doc: tenantDoc({ shortNumberPlans: [{ id: 'p', members: [{ code: '110', extension: '1001' }] }] }), path: '/shortNumberPlans/0/members/0/code', message: /public service number/ },
  { name: 'short code used twice in a plan', doc: tenantDoc({ shortNumberPlans: [{ id: 'p', members: [{ code: '6001', extension: '1001' }, { code: '6001', extension: '1002' }] }] }), path: '/shortNumberPlans/0/members/1/code', message: /already used/ },
  { name: 'extension twice in a plan', doc: tenantDoc({ shortNumberPlans: [{ id: 'p', members: [{ code: '6001', extension: '1001' }, { code: '6002', extension: '1001' }] }] }), path: '/shortNumberPlans/0/members/1/extension', message: /already has code 6001/ },
  { name: 'plan member extension missing', doc: tenantDoc({ shortNumberPlans: [{ id: 'p', members: [{ code: '6001', extension: '1999' }] }] }), path: '/shortNumberPlans/0/members/0/extension', message: /extension 1999 does not exist/ },
  { name: 'onFail jumps backwards', doc: tenantDoc({ routes: [route('main', [{ kind: 'voicemail', box: 'v' }, { kind: 'ring', targets: [{ extension: '1001' }], onFail: { busy: 1 } }])] }), path: '/routes/0/rules/0/actions/1/onFail/busy', message: /can only jump forward/ },
  { name: 'onFail jumps past the chain', doc: tenantDoc({ routes: [route('main', [{ kind: 'ring', targets: [{ extension: '1001' }], onFail: { noAnswer: 5 } }])] }), path: `${A0}/onFail/noAnswer`, message: /action 5 does not exist/ },
  { name: 'weights without the weighted strategy', doc: tenantDoc({ routes: [route('main', [{ kind: 'ring', strategy: 'sequential', targets: [{ extension: '1001', weight: 5 }] }])] }), path: `${A0}/strategy`, message: /not "weighted"/ },
  { name: 'same target twice', doc: tenantDoc({ routes: [route('main', [{ kind: 'ring', targets: [{ number: '13812345678' }, { number: '+8613812345678' }] }])] }), path: `${A0}/targets/1`, message: /same target as/ },
  { name: 'forwarding loop', doc: tenantDoc({ routes: [route('main', [{ kind: 'forward', route: 'b' }]), route('b', [{ kind: 'forward', route: 'main' }])] }), path: '/routes/1/rules/0/actions/0/route', message: /forwarding loops: main → b → main/ },
  { name: 'unknown tenant time zone', doc: tenantDoc({ timeZone: 'Mars/Olympus' }), path: '/timeZone', message: /unknown time zone "Mars\/Olympus"/ },
  { name: 'holiday on a date that does not exist', doc: tenantDoc({ schedules: [{ id: 's', weekly: [], holidays: [{ date: '2025-02-30' }] }] }), path: '/schedules/0/holidays/0/date', message: /not a calendar date/ },
  { name: 'holiday ending before it starts', doc: tenantDoc({ schedules: [{ id: 's', weekly: [], holidays: [{ date: '2025-02-10', to: '2025-02-01' }] }] }), path: '/schedules/0/holidays/0/to', message: /ends before it starts/ },
  { name: 'make-up day that is also a holiday', doc: tenantDoc({ schedules: [{ id: 's', weekly: [], holidays: [{ date: '2025-01-28', to: '2025-02-04' }], makeupWorkdays: [{ date: '2025-02-01' }] }] }), path: '/schedules/0/makeupWorkdays/0/date', message: /also a holiday/ },
  { name: 'empty window', doc: tenantDoc({ schedules: [{ id: 's', weekly: [{ days: ['mon'], from: '09:00', to: '09:00' }] }] }), path: '/schedules/0/weekly/0', message: /is empty/ },
  { name: '400 number as caller ID', doc: tenantDoc({ outboundCallerId: '4008123456' }), path: '/outboundCallerId', message: /inbound only/ },
  { name: 'caller ID the tenant does not own', doc: tenantDoc({ outboundCallerId: '02166668888' }), path: '/outboundCallerId', message: /not one of this tenant's numbers/ },
  { name: 'external number no gateway reaches', doc: tenantDoc({ outboundGateways: [{ id: 'us', host: 'us.example.invalid', prefixes: ['+1'] }], routes: [route('main', [{ kind: 'forward', number: '13812345678' }])] }), path: `${A0}/number`, message: /no outbound gateway reaches \+8613812345678/ },
  { name: 'ringing an internal code as a number', doc: tenantDoc({ routes: [route('main', [{ kind: 'ring', targets: [{ number: '1002' }] }])] }), path: `${A0}/targets/0/number`, message: /internal code, not an external number/ },
  { name: 'ambiguous blacklist prefix', doc: tenantDoc({ blacklist: { prefixes: ['88'] } }), path: '/blacklist/prefixes/0', message: /ambiguous/ },
  { name: 'unreadable blacklist number', doc: tenantDoc({ blacklist: { numbers: ['0101234567'] } }), path: '/blacklist/numbers/0', message: /not a valid Chinese number/ },
  { name: 'region override twice', doc: tenantDoc({ regionOverrides: [{ prefix: '+86138', province: '北京' }, { prefix: '138', province: '上海' }] }), path: '/regionOverrides/1/prefix', message: /already overridden/ },
  { name: 'IVR extension dialling with too few digits', doc: tenantDoc({ ivrMenus: [{ id: 'm', prompt: 'p', route: 'main', extensionDialling: true, maxDigits: 2 }] }), path: '/ivrMenus/0/maxDigits', message: /at least 4 digits/ },
];

t.test('each broken reference is reported at its field', async (t) => {
  for (const c of CASES) {
    const schema = validateTenant(c.doc);
    const issues: ValidationIssue[] = schema.ok ? [] : schema.issues;
    const hit = issues.find((i) => i.path === c.path && c.message.test(i.message));
    t.ok(hit, `${c.name}: want ${c.path} ${String(c.message)}; got ${JSON.stringify(issues)}`);
    t.ok(issues.every((i) => i.code === 'DP_ROUTE_REFERENCE'), `${c.name}: the schema accepted it, the reference check did not`);
  }
});

t.test('a valid tenant has no reference issues; nested ranges are fine', async (t) => {
  t.same(checkTenantReferences(tenantDoc()), []);
  t.same(checkTenantReferences(tenantDoc({
    numbers: [
      { range: { from: '057188880000', to: '057188889999' }, route: 'main' },
      { range: { from: '057188881000', to: '057188881999' }, route: 'main' },
      { range: { from: '057188881200', to: '057188881299' }, route: 'main' },
      { prefix: '0571888', route: 'main' },
      { number: '057188881234', route: 'main' },
    ],
  })), [], 'nested ranges, a covering prefix and an exact number are unambiguous');
});

t.test('every problem in one pass', async (t) => {
  const issues = checkTenantReferences(tenantDoc({
    numbers: [{ number: '4008123456', route: 'nowhere' }],
    routes: [route('main', [{ kind: 'ring', targets: [{ extension: '1009' }] }, { kind: 'ringGroup', group: 'g' }])],
  }));
  t.same(issues.map((i) => i.path).sort(), ['/numbers/0/route', `${A0}/targets/0/extension`, '/routes/0/rules/0/actions/1/group'].sort());
});
