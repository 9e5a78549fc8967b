/**
 * Group short numbers (集团短号): members dial each other by code and the
 * callee sees the caller's code; non-members are refused (403 for our own
 * extensions, 404 for outside callers so codes cannot be probed).
 */
import t from 'tap';
import { compileTenant, evaluate } from '../../../src/routing/engine.js';
import { ext, facts, fromExtension, groupsOf, ring, route, step, tenantDoc } from './fixtures.js';

const c = compileTenant(tenantDoc({
  numbers: [{ number: '02166668888', route: 'main' }],
  areaCode: '21',
  outboundCallerId: '02166668888',
  extensions: [ext('1001', { name: '张三' }), ext('1002', { name: '李四', voicemail: 'vm-1002' }), ext('1003'), ext('1004')],
  shortNumberPlans: [
    { id: 'hq', members: [
      { code: '6001', extension: '1001', name: '张三' },
      { code: '6002', extension: '1002' },
      { code: '6003', number: '+8613900216003', name: '王五' },
    ] },
    { id: 'branch', members: [{ code: '7004', extension: '1004' }, { code: '7001', extension: '1001' }] },
  ],
  routes: [route('main', [{ kind: 'ring', targets: [{ extension: '1001' }] }])],
}));

t.test('a member dials a member extension by code; the callee sees the caller\'s code', async (t) => {
  const ev = evaluate(c, fromExtension('1001', '6002'));
  t.same(groupsOf(ring(ev)), [['1002']]);
  t.same(ev.plan.caller, { number: '6001', name: '张三', shortCodePlan: 'hq' });
  t.match(step(ev, 1), { kind: 'voicemail', box: 'vm-1002' }, 'the callee\'s own no-answer behaviour applies');
  t.same(ring(ev).onFail, { 'busy': 1, 'no-answer': 1, 'unreachable': 1, 'rejected': 1, 'declined': 1 });
  t.same(ev.explanation.called.match, { kind: 'short-code', entry: 'short code 6002 of plan "hq"' });
  t.same(ev.explanation.caller.shortCode, { plan: 'hq', code: '6001' });
});

t.test('a member of two plans is known by the code of the plan the callee is in', async (t) => {
  const ev = evaluate(c, fromExtension('1001', '7004'));
  t.same(groupsOf(ring(ev)), [['1004']]);
  t.same(ev.plan.caller, { number: '7001', name: '张三', shortCodePlan: 'branch' });
});

t.test('an extension outside the plan is refused with 403', async (t) => {
  const ev = evaluate(c, fromExtension('1003', '6002'));
  t.match(step(ev, 0), { kind: 'reject', status: 403, reason: 'Forbidden' });
  t.equal(ev.explanation.outcome, 'refused');
  t.match(ev.explanation.summary, /extension 1003 is not a member of short-number plan "hq" that defines 6002/);
  t.match(step(evaluate(c, fromExtension('1004', '6001')), 0), { kind: 'reject', status: 403 }, 'a member of another plan is refused too');
});

t.test('a member\'s mobile, arriving over the carrier trunk, dials a code', async (t) => {
  const ev = evaluate(c, facts({ called: '6001', caller: '+8613900216003' }));
  t.same(groupsOf(ring(ev)), [['1001']]);
  t.same(ev.plan.caller, { number: '6003', name: '王五', shortCodePlan: 'hq' });
});

t.test('an outside caller dialling a code gets 404, like any unknown number', async (t) => {
  const ev = evaluate(c, facts({ called: '6001', caller: '13812345678' }));
  t.match(step(ev, 0), { kind: 'reject', status: 404 });
  t.equal(ev.explanation.outcome, 'not-found');
  t.match(ev.explanation.summary, /not a member of its plan \(outside callers get 404/);
  t.match(step(evaluate(c, facts({ called: '6001', caller: undefined })), 0), { kind: 'reject', status: 404 }, 'withheld caller');
});

t.test('a code that maps to a full number rings it through a gateway', async (t) => {
  const ev = evaluate(c, fromExtension('1002', '6003'));
  t.match(ring(ev).groups[0]?.targets[0], { kind: 'external', number: '+8613900216003', gateways: [{ gateway: 'gw', dial: '13900216003', callerId: '02166668888' }] });
  t.same(ev.plan.caller, { number: '6002', name: '李四', shortCodePlan: 'hq' }, 'internal identity: the code (name from the extension when the plan has none); the carrier leg presents the tenant number');
});

t.test('dialling the extension number itself presents the extension number', async (t) => {
  const ev = evaluate(c, fromExtension('1001', '1002'));
  t.same(groupsOf(ring(ev)), [['1002']]);
  t.same(ev.plan.caller, { number: '1001', name: '张三' });
  t.match(step(evaluate(c, fromExtension('1001', '1009')), 0), { kind: 'reject', status: 404 }, 'neither an extension nor a code');
});
