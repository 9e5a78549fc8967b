/**
 * The documents in routing-rules/examples/ validate, compile, and route the
 * way their descriptions say.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileGlobal, compileTenant, evaluate, type CompiledTenant } from '../../../src/routing/engine.js';
import type { RoutingFacts } from '../../../src/routing/facts.js';
import { validateGlobal, validateTenant } from '../../../src/routing/validate.js';
import { groupsOf, ring, step } from './fixtures.js';

const dir = join(process.cwd(), 'routing-rules', 'examples');
const load = (name: string): unknown => JSON.parse(readFileSync(join(dir, name), 'utf8'));
/** Wall time in Asia/Shanghai (UTC+8). */
const sh = (y: number, mo: number, d: number, h: number, mi = 0) => Date.UTC(y, mo - 1, d, h - 8, mi);
const global = compileGlobal(load('global.json'));

t.test('every example validates and compiles', async (t) => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  t.ok(files.length >= 4, files.join(', '));
  for (const f of files) {
    if (f === 'global.json') {
      const v = validateGlobal(load(f));
      t.ok(v.ok, `${f}: ${v.ok ? 'valid' : JSON.stringify(v.issues)}`);
      continue;
    }
    const v = validateTenant(load(f));
    t.ok(v.ok, `${f}: ${v.ok ? 'valid' : JSON.stringify(v.issues)}`);
    t.doesNotThrow(() => compileTenant(load(f)), `${f} compiles`);
  }
});

t.test('(a) 400 hotline: working hours, Beijing / Shanghai split, after-hours branch', async (t) => {
  const c: CompiledTenant = compileTenant(load('hotline-400.json'));
  const call = (over: Partial<RoutingFacts>) => evaluate(c, {
    tenant: 'acme-hotline', origin: { kind: 'trunk', trunk: 'ctcc-400' }, called: '4008123456', caller: '13800000000',
    time: sh(2025, 3, 4, 10), seed: 5, ...over,
  }, { global });

  const bj = call({ callerRegion: { province: '北京市', city: '北京市' } });
  t.equal(bj.explanation.routes[0]?.matchedRule, 'beijing');
  t.same(ring(bj).counter, { key: 'rr:acme-hotline:group:beijing-agents' }, 'round-robin: the executor INCRs this key');
  t.same(groupsOf(ring(bj)), [['2001'], ['2002']]);
  t.same(bj.plan.steps.map((s) => s.kind), ['ring', 'ring', 'voicemail'], 'Beijing agents, then everybody, then voicemail');
  t.equal(ring(bj).overallTimeoutMs, 60000);

  const shCall = call({ callerRegion: { province: '上海市', city: '上海市' } });
  t.equal(shCall.explanation.routes[0]?.matchedRule, 'shanghai');
  t.same(groupsOf(ring(shCall)), [['2101'], ['+8613912340001'], ['2102']], 'sequential, the agent\'s mobile right after the agent');
  const mobile = ring(shCall).groups[1]?.targets[0];
  t.match(mobile, { carrier: { id: 'ctcc', source: 'ported' }, gateways: [{ gateway: 'gw-ctcc' }, { gateway: 'gw-cmcc' }] }, 'a ported 139 number leaves through China Telecom');

  const gz = call({ callerRegion: { province: '广东省', city: '广州市' } });
  t.equal(gz.explanation.routes[0]?.matchedRule, 'everyone-else');
  t.same(groupsOf(ring(gz)), [['2001', '2002', '2101', '2102'], ['+8613912340001']]);

  t.equal(call({ caller: '13912340123', callerRegion: { province: '广东省' } }).explanation.routes[0]?.matchedRule, 'beijing', 'tenant region override');

  const night = call({ time: sh(2025, 3, 4, 20), callerRegion: { province: '北京市' } });
  t.equal(night.explanation.routes[0]?.matchedRule, 'after-hours');
  t.same(night.plan.steps.map((s) => s.kind), ['announce', 'voicemail']);
  t.match(step(night, 0), { prompt: 'after-hours', then: 1 });
  t.equal(call({ time: sh(2025, 1, 29, 10) }).explanation.routes[0]?.matchedRule, 'after-hours', '春节 holiday');
  t.equal(call({ time: sh(2025, 1, 26, 10), callerRegion: { province: '上海' } }).explanation.routes[0]?.matchedRule, 'shanghai', 'Sunday 2025-01-26 is a make-up workday');
  t.equal(call({ time: sh(2025, 3, 8, 11) }).explanation.routes[0]?.matchedRule, 'everyone-else', 'Saturday morning is open');

  const blocked = call({ caller: '136-0000-1111' });
  t.match(step(blocked, 0), { kind: 'announce', prompt: 'call-blocked', then: 'hangup' });
  t.same(blocked.explanation.caller.blacklisted, { list: 'tenant', match: 'exact', entry: '+8613600001111' });
  t.same(call({ caller: '17001112222' }).explanation.caller.blacklisted, { list: 'global', match: 'prefix', entry: '+861700' });
  t.match(step(call({ called: '02166668888' }), 0), { kind: 'reject', status: 403 }, 'the 400 trunk delivers only 400812…');
});

t.test('(b) main number: IVR menu, extension dialling, call forwarding, outbound', async (t) => {
  const c = compileTenant(load('main-number-ivr.json'));
  const base: RoutingFacts = { tenant: 'hz-trading', origin: { kind: 'trunk', trunk: 'ctcc-hz' }, called: '88880000', caller: '13800000000', time: sh(2025, 3, 4, 10), seed: 1 };
  const call = (over: Partial<RoutingFacts>) => evaluate(c, { ...base, ...over }, { global });

  t.match(step(call({}), 0), { kind: 'ivr', menu: 'main-menu', maxDigits: 4, retries: 2 }, 'a local number from the Hangzhou trunk reaches the main number');
  t.match(step(call({ called: '057188881005' }), 0), { kind: 'ivr' }, 'the DID block goes to the switchboard too');
  const sales = call({ ivr: { menu: 'main-menu', digits: '1' } });
  t.equal(ring(sales).strategy, 'weighted');
  t.same(sales.plan.steps.map((s) => s.kind), ['ring', 'voicemail']);
  t.same(groupsOf(ring(sales)).flat().sort(), ['+8613800571002', '8002', '8003'], 'both salespeople, 8002 with the mobile it rings together with');
  const support = call({ ivr: { menu: 'main-menu', digits: '2' } });
  t.equal(ring(support).stopOnDecline, false, 'support continues past a decline');
  t.same(support.plan.steps.map((s) => s.kind), ['ring', 'ring', 'voicemail'], 'support, then the operator route inlined');
  t.same(groupsOf(ring(support, 1)), [['8001']]);
  t.same(groupsOf(ring(call({ ivr: { menu: 'main-menu', digits: '8003' } }))), [['8003']], 'dial an extension from the menu');
  t.same(groupsOf(ring(call({ ivr: { menu: 'main-menu', digits: '' } }))), [['8001']], 'no input: the operator');
  const closed = call({ time: sh(2025, 10, 3, 10) });
  t.same(closed.plan.steps.map((s) => s.kind), ['announce', 'voicemail'], 'National Day: closed');

  const internal = (from: string, called: string) => evaluate(c, { ...base, origin: { kind: 'extension', extension: from }, called, caller: undefined }, { global });
  const manager = internal('8001', '8005');
  t.same(manager.plan.steps.map((s) => s.kind), ['ring', 'forward', 'ring'], 'the manager\'s own forwarding route');
  t.same([ring(manager).onFail.busy, ring(manager).onFail['no-answer']], [2, 1], 'busy → reception, no answer → mobile');
  const out = internal('8002', '13812345678');
  t.match(ring(out).groups[0]?.targets[0], { gateways: [{ gateway: 'gw-hz', dial: '13812345678', callerId: '057188880000' }] }, 'outbound with the main number');
  t.match(ring(internal('8005', '02166668888')).groups[0]?.targets[0], { gateways: [{ callerId: '057188881005' }] }, 'the manager presents his DID');
});

t.test('(c) short-number plan: 6001 is 1001, 6002 is 1002', async (t) => {
  const c = compileTenant(load('short-number-plan.json'));
  const dial = (from: string, called: string) => evaluate(c, { tenant: 'sh-group', origin: { kind: 'extension', extension: from }, called, time: sh(2025, 3, 4, 10), seed: 1 });
  const a = dial('1001', '6002');
  t.same(groupsOf(ring(a)), [['1002']]);
  t.same(a.plan.caller, { number: '6001', name: '张三', shortCodePlan: 'headquarters' }, '李四 sees 6001');
  const b = dial('1002', '6001');
  t.same(groupsOf(ring(b)), [['1001']]);
  t.equal(b.plan.caller.number, '6002');
  t.match(step(dial('1003', '6001'), 0), { kind: 'reject', status: 403 }, 'the visitor phone is not a member');
  t.match(ring(dial('1001', '6003')).groups[0]?.targets[0], { number: '+8613900216003', gateways: [{ dial: '+8613900216003', callerId: '+862166668888' }] });
  const mobile = evaluate(c, { tenant: 'sh-group', origin: { kind: 'trunk', trunk: 'cmcc-sh' }, called: '6002', caller: '+8613900216003', time: sh(2025, 3, 4, 10), seed: 1 });
  t.same(groupsOf(ring(mobile)), [['1002']]);
  t.equal(mobile.plan.caller.number, '6003', 'the member mobile is shown by its code');
});
