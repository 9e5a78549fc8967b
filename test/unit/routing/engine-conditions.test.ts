/**
 * Rule conditions (schedule, caller region with tenant overrides, caller and
 * called number patterns, IVR digits) and blacklists (exact, prefix, global
 * vs tenant, anonymous callers, rules written for blacklisted callers), with
 * the explanation the dry-run API shows.
 */
import t from 'tap';
import { compileGlobal, compileTenant, evaluate } from '../../../src/routing/engine.js';
import type { Conditions, Route, TenantDocument } from '../../../src/routing/model.js';
import { facts, fromExtension, MON_10_00, step, tenantDoc } from './fixtures.js';

/** Route "main": one rule per condition set, each rejecting with its own status; a catch-all answers 599. */
function rules(...list: Array<[string, Conditions, number]>): Route {
  return {
    id: 'main',
    rules: [
      ...list.map(([id, when, status]) => ({ id, when, actions: [{ kind: 'reject' as const, status }] })),
      { id: 'catch-all', actions: [{ kind: 'reject', status: 599 }] },
    ],
  };
}

function statusOf(c: ReturnType<typeof compileTenant>, f: ReturnType<typeof facts>, opts = {}): number {
  const s = step(evaluate(c, f, opts), 0);
  return s.kind === 'reject' ? s.status : 0;
}

t.test('caller region: suffix-insensitive names, cities, "not", unknown callers', async (t) => {
  const c = compileTenant(tenantDoc({
    routes: [rules(
      ['hangzhou', { callerRegion: { in: [{ province: '浙江', city: '杭州' }] } }, 571],
      ['beijing', { callerRegion: { in: [{ province: '北京' }] } }, 410],
      ['shanghai', { callerRegion: { in: [{ province: '上海市' }] } }, 421],
      ['not-guangdong', { callerRegion: { in: [{ province: '广东' }], not: true } }, 499],
    )],
  }));
  const table: Array<[string, { province?: string; city?: string } | undefined, number]> = [
    ['北京市 matches a rule written 北京', { province: '北京市', city: '北京市' }, 410],
    ['上海 matches a rule written 上海市', { province: '上海', city: '上海' }, 421],
    ['浙江省杭州市 matches province+city', { province: '浙江省', city: '杭州市' }, 571],
    ['浙江省宁波市: right province, wrong city', { province: '浙江省', city: '宁波市' }, 499],
    ['广东省深圳市: excluded by the "not" rule', { province: '广东省', city: '深圳市' }, 599],
    ['unknown region is "not in Guangdong"', undefined, 499],
  ];
  for (const [name, region, want] of table) t.equal(statusOf(c, facts(region ? { callerRegion: region } : {})), want, name);
});

t.test('a tenant region override beats the region fact', async (t) => {
  const c = compileTenant(tenantDoc({
    regionOverrides: [{ prefix: '+861381234', province: '北京' }, { prefix: '138123456', province: '上海' }],
    routes: [rules(['beijing', { callerRegion: { in: [{ province: '北京' }] } }, 410], ['shanghai', { callerRegion: { in: [{ province: '上海' }] } }, 421])],
  }));
  t.equal(statusOf(c, facts({ caller: '13812340000', callerRegion: { province: '广东省' } })), 410, 'prefix override wins over the lookup');
  t.equal(statusOf(c, facts({ caller: '13812345678', callerRegion: { province: '广东省' } })), 421, 'the longest override prefix wins');
  t.equal(statusOf(c, facts({ caller: '13900000000', callerRegion: { province: '北京市' } })), 410, 'no override: the fact');
  const ev = evaluate(c, facts({ caller: '13812340000', callerRegion: { province: '广东省' } }), { explain: true });
  t.equal(ev.explanation.caller.region, '北京 (tenant override +861381234)');
});

t.test('caller and called number patterns', async (t) => {
  const c = compileTenant(tenantDoc({
    numbers: [{ range: { from: '057188880000', to: '057188889999' }, route: 'main' }],
    routes: [rules(
      ['vip-mobiles', { callerNumber: { patterns: ['1391234*'] } }, 401],
      ['beijing-landlines', { callerNumber: { patterns: ['010XXXXXXXX'] } }, 402],
      ['foreign', { callerNumber: { patterns: ['+1*', '+44*'] } }, 403],
      ['sales-dids', { calledNumber: { patterns: ['0571888812XX'] } }, 404],
      ['not-mobile', { callerNumber: { patterns: ['1*'], not: true } }, 405],
    )],
  }));
  const table: Array<[string, string, string | undefined, number]> = [
    ['mobile prefix', '057188880000', '+8613912340000', 401],
    ['landline shape with X', '057188880000', '01088886666', 402],
    ['E.164 pattern', '057188880000', '+14155552671', 403],
    ['called-number pattern selects DIDs of a shared route', '057188881234', '13800000000', 404],
    ['not a mobile', '057188880000', '057166667777', 405],
    ['anonymous caller matches no caller pattern, so "not" holds', '057188880000', undefined, 405],
    ['no rule but the catch-all', '057188880000', '13800000000', 599],
  ];
  for (const [name, called, caller, want] of table) {
    t.equal(statusOf(c, facts(caller === undefined ? { called, caller: undefined } : { called, caller })), want, name);
  }
});

t.test('schedule in / out', async (t) => {
  const c = compileTenant(tenantDoc({
    schedules: [{ id: 'office', weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '18:00' }], holidays: [{ date: '2025-10-01', to: '2025-10-08' }], makeupWorkdays: [{ date: '2025-09-28' }] }],
    routes: [rules(['closed', { schedule: { id: 'office', inside: false } }, 480], ['open', { schedule: { id: 'office', inside: true } }, 486])],
  }));
  const sh = (mo: number, d: number, h: number) => Date.UTC(2025, mo - 1, d, h - 8);
  t.equal(statusOf(c, facts({ time: MON_10_00 })), 486, 'Monday 10:00');
  t.equal(statusOf(c, facts({ time: sh(1, 6, 20) })), 480, 'Monday 20:00');
  t.equal(statusOf(c, facts({ time: sh(10, 1, 10) })), 480, 'National Day');
  t.equal(statusOf(c, facts({ time: sh(9, 28, 10) })), 486, 'Sunday 2025-09-28 is a make-up workday');
});

t.test('IVR digits', async (t) => {
  const c = compileTenant(tenantDoc({
    ivrMenus: [{ id: 'menu', prompt: 'p', route: 'main' }],
    routes: [rules(['one', { ivrDigits: ['1'] }, 401], ['star-or-nothing', { ivrDigits: ['*', ''] }, 402])],
  }));
  t.equal(statusOf(c, facts({ ivr: { menu: 'menu', digits: '1' } })), 401);
  t.equal(statusOf(c, facts({ ivr: { menu: 'menu', digits: '' } })), 402, 'no input');
  t.equal(statusOf(c, facts({ ivr: { menu: 'menu', digits: '9' } })), 599);
  t.equal(statusOf(c, facts()), 599, 'no IVR yet: digit rules do not match');
});

t.test('the dry-run trace shows every rule and every condition', async (t) => {
  const c = compileTenant(tenantDoc({
    schedules: [{ id: 'office', weekly: [{ days: ['mon'], from: '09:00', to: '18:00' }] }],
    routes: [rules(
      ['both-fail', { schedule: { id: 'office', inside: false }, callerRegion: { in: [{ province: '上海' }] } }, 401],
      ['beijing-open', { schedule: { id: 'office', inside: true }, callerRegion: { in: [{ province: '北京' }] } }, 402],
    )],
  }));
  const ev = evaluate(c, facts({ callerRegion: { province: '北京市', city: '北京市' } }), { explain: true });
  const trace = ev.explanation.routes[0];
  t.equal(trace?.matchedRule, 'beijing-open');
  t.same(trace?.rules?.map((r) => [r.rule, r.matched, r.conditions.map((x) => [x.condition, x.ok])]), [
    ['both-fail', false, [['schedule', false], ['callerRegion', false]]],
    ['beijing-open', true, [['schedule', true], ['callerRegion', true]]],
  ], 'a failing rule still lists all of its conditions');
  t.match(trace?.rules?.[0]?.conditions[0]?.detail, /rule wants outside schedule "office"; open: 2025-01-06 mon 10:00 Asia\/Shanghai is inside mon 09:00-18:00/);
  t.match(trace?.rules?.[1]?.conditions[1]?.detail, /caller region 北京市\/北京市 is in \[北京\]/);
  t.match(ev.explanation.summary, /routed: number 4008123456 \(\/numbers\/0\) → route "main" rule "beijing-open" → reject 402/);
  const fast = evaluate(c, facts({ callerRegion: { province: '北京市' } }));
  t.equal(fast.explanation.routes[0]?.rules, undefined, 'without explain only the matched rule is named');
  t.equal(fast.explanation.routes[0]?.matchedRule, 'beijing-open');
  t.same(fast.plan, ev.plan, 'explaining does not change the plan');
});

const blacklisting: Partial<TenantDocument> = {
  blacklist: { numbers: ['13800000001'], prefixes: ['+86165'] },
  routes: [rules()],
};

t.test('blacklist: tenant exact and prefix, 603 by default', async (t) => {
  const c = compileTenant(tenantDoc(blacklisting));
  const exact = evaluate(c, facts({ caller: '+8613800000001' }));
  t.match(step(exact, 0), { kind: 'reject', status: 603, reason: 'Decline' });
  t.equal(exact.explanation.outcome, 'blacklisted');
  t.same(exact.explanation.caller.blacklisted, { list: 'tenant', match: 'exact', entry: '+8613800000001' });
  const prefix = evaluate(c, facts({ caller: '16512345678' }));
  t.equal(step(prefix, 0).kind, 'reject');
  t.same(prefix.explanation.caller.blacklisted, { list: 'tenant', match: 'prefix', entry: '+86165' });
  t.equal(statusOf(c, facts({ caller: '13800000002' })), 599, 'a neighbour is not blacklisted');
});

t.test('blacklist: global lists apply to every tenant, and only when passed in', async (t) => {
  const c = compileTenant(tenantDoc({ routes: [rules()] }));
  const global = compileGlobal({ blacklist: { numbers: ['+8617099990000'], prefixes: ['+861700'] } });
  const ex = evaluate(c, facts({ caller: '17099990000' }), { global });
  t.same(ex.explanation.caller.blacklisted, { list: 'global', match: 'exact', entry: '+8617099990000' });
  const pre = evaluate(c, facts({ caller: '17001234567' }), { global });
  t.same(pre.explanation.caller.blacklisted, { list: 'global', match: 'prefix', entry: '+861700' });
  t.equal(statusOf(c, facts({ caller: '17001234567' })), 599, 'without the global data nothing is blacklisted');
});

t.test('blacklist: the tenant status, and rules written for blacklisted callers', async (t) => {
  const withStatus = compileTenant(tenantDoc({ ...blacklisting, blacklist: { numbers: ['13800000001'], status: 403 } }));
  t.equal(statusOf(withStatus, facts({ caller: '13800000001' })), 403);
  const withRule = compileTenant(tenantDoc({
    ...blacklisting,
    routes: [{ id: 'main', rules: [
      { id: 'everyone', actions: [{ kind: 'reject', status: 599 }] },
      { id: 'blocked', when: { callerBlacklisted: true }, actions: [{ kind: 'announce', prompt: 'you-are-blocked' }] },
    ] }],
  }));
  const ev = evaluate(withRule, facts({ caller: '13800000001' }), { explain: true });
  t.match(step(ev, 0), { kind: 'announce', prompt: 'you-are-blocked', then: 'hangup' }, 'a blacklisted caller skips rules not written for them');
  t.equal(ev.explanation.outcome, 'routed', 'the tenant\'s rule decided');
  t.match(ev.explanation.routes[0]?.rules?.[0]?.conditions[0], { condition: 'callerBlacklisted', ok: false });
  t.equal(statusOf(withRule, facts({ caller: '13900000000' })), 599, 'other callers never reach the blacklist rule');
});

t.test('blacklist: withheld numbers when the tenant asks; extensions are never screened', async (t) => {
  const c = compileTenant(tenantDoc({ blacklist: { anonymous: true }, routes: [rules()] }));
  const anon = evaluate(c, facts({ caller: undefined }));
  t.equal(anon.explanation.outcome, 'blacklisted');
  t.same(anon.explanation.caller.blacklisted, { list: 'tenant', match: 'anonymous', entry: 'withheld number' });
  t.equal(evaluate(c, facts({ caller: 'anonymous' })).explanation.outcome, 'blacklisted', 'garbage is as good as withheld');
  const open = compileTenant(tenantDoc({ routes: [rules()] }));
  t.equal(statusOf(open, facts({ caller: undefined })), 599, 'anonymous callers are fine by default');
  const internal = compileTenant(tenantDoc({ blacklist: { anonymous: true, prefixes: ['+86'] }, routes: [rules()] }));
  t.equal(statusOf(internal, fromExtension('1001', '4008123456')), 599, 'an extension calling the tenant\'s own number');
});
