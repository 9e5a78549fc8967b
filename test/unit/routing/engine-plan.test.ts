/**
 * Plan shape: failover chains (busy / no answer / unreachable / rejected /
 * declined → next step or stop), forward jumps, decline stop vs continue,
 * announcements, forwarding to numbers and routes, IVR menus and
 * continuations, direct extension dialling, outbound calls with gateway
 * choice by carrier (ported numbers included), and plain-JSON output.
 */
import t from 'tap';
import { compileGlobal, compileTenant, evaluate } from '../../../src/routing/engine.js';
import type { Action, TenantDocument } from '../../../src/routing/model.js';
import { nextStepAfter, type FailureKind, type NextStep } from '../../../src/routing/plan.js';
import { ext, facts, fromExtension, groupsOf, ring, route, step, tenantDoc } from './fixtures.js';

const chain = (actions: Action[], over: Partial<TenantDocument> = {}) => compileTenant(tenantDoc({ routes: [route('main', actions)], ...over }));
const fails = (next: Record<FailureKind, NextStep>) => [next.busy, next['no-answer'], next.unreachable, next.rejected, next.declined];

t.test('a failover chain: every failure moves on, a decline stops, the last step stops', async (t) => {
  const ev = evaluate(chain([
    { kind: 'ring', targets: [{ extension: '1001' }] },
    { kind: 'ring', targets: [{ extension: '1002' }, { extension: '1003' }], strategy: 'sequential' },
    { kind: 'voicemail', box: 'main' },
  ]), facts());
  t.equal(ev.plan.steps.length, 3);
  t.same(fails(ring(ev, 0).onFail), [1, 1, 1, 1, 'stop']);
  t.equal(ring(ev, 0).stopOnDecline, true);
  t.same(fails(ring(ev, 1).onFail), [2, 2, 2, 2, 'stop']);
  t.match(step(ev, 2), { kind: 'voicemail', box: 'main', source: { route: 'main', rule: 'only', action: 2 } });
  t.equal(nextStepAfter(ring(ev, 0), 'no-answer'), 1, 'the executor looks up the outcome kind directly');
});

t.test('per-outcome jumps, explicit stop, decline continue', async (t) => {
  const ev = evaluate(chain([
    { kind: 'ring', targets: [{ extension: '1001' }], onFail: { busy: 2, noAnswer: 'next', unreachable: 'stop' }, onDecline: 'continue' },
    { kind: 'forward', number: '13812345678', onFail: { declined: 3 } },
    { kind: 'voicemail', box: 'busy' },
    { kind: 'announce', prompt: 'sorry' },
  ]), facts());
  t.same(fails(ring(ev, 0).onFail), [2, 1, 'stop', 1, 2], 'busy jumps to voicemail; a continued decline goes where busy goes');
  t.equal(ring(ev, 0).stopOnDecline, false, 'a 603 does not end the hunt inside the step');
  const fwd = step(ev, 1);
  t.equal(fwd.kind, 'forward');
  if (fwd.kind === 'forward') {
    t.same(fails(fwd.onFail), [2, 2, 2, 2, 3]);
    t.match(fwd.target, { kind: 'external', number: '+8613812345678', timeoutMs: 20000, gateways: [{ gateway: 'gw', dial: '13812345678', callerId: '13812345678' }] });
  }
});

t.test('unreachable actions are not emitted; an announcement can go on', async (t) => {
  const dead = evaluate(chain([{ kind: 'reject', status: 486 }, { kind: 'ring', targets: [{ extension: '1001' }] }]), facts());
  t.same(dead.plan.steps.map((s) => s.kind), ['reject'], 'nothing after a reject can run');
  const ann = evaluate(chain([{ kind: 'announce', prompt: 'welcome', then: 'next' }, { kind: 'ring', targets: [{ extension: '1001' }] }]), facts());
  t.match(step(ann, 0), { kind: 'announce', prompt: 'welcome', then: 1 });
  t.match(step(evaluate(chain([{ kind: 'announce', prompt: 'bye' }]), facts()), 0), { kind: 'announce', then: 'hangup' });
  t.match(step(evaluate(chain([{ kind: 'reject', status: 486 }]), facts()), 0), { kind: 'reject', status: 486, reason: 'Busy Here' });
  t.match(step(evaluate(chain([{ kind: 'reject', status: 480, reason: 'Closed for lunch' }]), facts()), 0), { reason: 'Closed for lunch' });
});

t.test('forwarding to another route inlines its plan; jumps land on its first step', async (t) => {
  const c = compileTenant(tenantDoc({
    schedules: [{ id: 'office', weekly: [{ days: ['mon'], from: '09:00', to: '18:00' }] }],
    routes: [
      route('main', [
        { kind: 'ring', targets: [{ extension: '1001' }], onFail: { busy: 1, noAnswer: 1 } },
        { kind: 'forward', route: 'overflow' },
      ]),
      { id: 'overflow', rules: [
        { id: 'day', when: { schedule: { id: 'office', inside: true } }, actions: [{ kind: 'ring', targets: [{ extension: '1002' }] }, { kind: 'voicemail', box: 'overflow' }] },
        { id: 'night', actions: [{ kind: 'voicemail', box: 'night' }] },
      ] },
    ],
  }));
  const ev = evaluate(c, facts());
  t.same(ev.plan.steps.map((s) => s.kind), ['ring', 'ring', 'voicemail']);
  t.same(fails(ring(ev, 0).onFail), [1, 1, 1, 1, 'stop']);
  t.same(groupsOf(ring(ev, 1)), [['1002']]);
  t.same(fails(ring(ev, 1).onFail), [2, 2, 2, 2, 'stop']);
  t.same(ev.explanation.routes.map((r) => [r.route, r.matchedRule]), [['main', 'only'], ['overflow', 'day']]);
  t.equal(ev.explanation.routes[1]?.via, 'forward from route "main" rule "only"');
});

t.test('IVR: the menu step, then the continuation evaluates the menu\'s route with the digits', async (t) => {
  const c = compileTenant(tenantDoc({
    ivrMenus: [{ id: 'welcome', prompt: 'press-1', maxDigits: 4, digitTimeoutMs: 4000, retries: 1, extensionDialling: true, route: 'choice' }],
    extensions: [ext('1001'), ext('1002', { voicemail: 'vm2' })],
    routes: [
      route('main', [{ kind: 'ivr', menu: 'welcome' }]),
      { id: 'choice', rules: [
        { id: 'one', when: { ivrDigits: ['1'] }, actions: [{ kind: 'ring', targets: [{ extension: '1001' }] }] },
        { id: 'other', actions: [{ kind: 'announce', prompt: 'invalid' }] },
      ] },
    ],
  }));
  t.same(step(evaluate(c, facts()), 0), { kind: 'ivr', menu: 'welcome', prompt: 'press-1', maxDigits: 4, digitTimeoutMs: 4000, retries: 1, source: { route: 'main', rule: 'only', action: 0 } });
  t.same(groupsOf(ring(evaluate(c, facts({ ivr: { menu: 'welcome', digits: '1' } })))), [['1001']]);
  const dialled = evaluate(c, facts({ ivr: { menu: 'welcome', digits: '1002' } }));
  t.same(groupsOf(ring(dialled)), [['1002']], 'digits equal to an extension ring it');
  t.match(step(dialled, 1), { kind: 'voicemail', box: 'vm2' });
  t.same(dialled.explanation.called.match, { kind: 'ivr-extension', entry: 'IVR menu "welcome": extension 1002' });
  t.match(step(evaluate(c, facts({ ivr: { menu: 'welcome', digits: '7' } })), 0), { kind: 'announce', prompt: 'invalid' });
  const gone = evaluate(c, facts({ ivr: { menu: 'old-menu', digits: '1' } }));
  t.match(step(gone, 0), { kind: 'reject', status: 500 });
  t.equal(gone.explanation.outcome, 'error');
});

t.test('dialling an extension: its own route if it has one, else ring it and fall to voicemail', async (t) => {
  const c = compileTenant(tenantDoc({
    extensions: [ext('1001', { route: 'forwarding', alsoRing: { numbers: ['13800001001'], mode: 'after' } }), ext('1002'), ext('1003', { voicemail: 'vm3', ringTimeoutMs: 9000 })],
    groups: [{ id: 'g', strategy: 'sequential', members: [{ extension: '1001' }] }],
    routes: [route('main', [{ kind: 'ringGroup', group: 'g' }]), route('forwarding', [{ kind: 'forward', number: '13900001001' }])],
  }));
  t.match(step(evaluate(c, fromExtension('1002', '1001')), 0), { kind: 'forward', target: { number: '+8613900001001' } }, 'dialled directly: call forwarding');
  t.same(groupsOf(ring(evaluate(c, facts()))), [['1001'], ['+8613800001001']], 'rung as a group member: its devices and bound mobile, not its forwarding');
  const vm = evaluate(c, fromExtension('1002', '1003'));
  t.same(vm.plan.steps.map((s) => s.kind), ['ring', 'voicemail']);
  t.same(fails(ring(vm).onFail), [1, 1, 1, 1, 1], 'every failure, a decline included, goes to voicemail');
  t.equal(ring(vm).groups[0]?.timeoutMs, 9000);
  const none = evaluate(c, fromExtension('1003', '1002'));
  t.same(fails(ring(none).onFail), ['stop', 'stop', 'stop', 'stop', 'stop'], 'no voicemail: the caller gets the failure');
});

t.test('outbound calls from extensions', async (t) => {
  const c = compileTenant(tenantDoc({
    numbers: [{ number: '4008123456', route: 'main' }, { number: '057188880000', route: 'main' }, { number: '057188881005', route: 'main' }],
    outboundCallerId: '057188880000',
    extensions: [ext('1001'), ext('1005', { outboundCallerId: '057188881005' })],
  }));
  const out = evaluate(c, fromExtension('1001', '13812345678'));
  t.same(ring(out), {
    kind: 'ring', strategy: 'sequential', stopOnDecline: true,
    groups: [{ timeoutMs: 120000, targets: [{ kind: 'external', number: '+8613812345678', timeoutMs: 120000, gateways: [{ gateway: 'gw', host: 'gw.example.invalid', port: 5060, transport: 'udp', dial: '13812345678', callerId: '057188880000' }] }] }],
    onFail: { 'busy': 'stop', 'no-answer': 'stop', 'unreachable': 'stop', 'rejected': 'stop', 'declined': 'stop' },
    source: { builtin: 'outbound call' },
  });
  t.equal(out.explanation.called.match?.kind, 'outbound');
  t.match(ring(evaluate(c, fromExtension('1005', '+14155552671'))).groups[0]?.targets[0], { number: '+14155552671', gateways: [{ dial: '0014155552671', callerId: '057188881005' }] }, 'the extension\'s own caller ID');
  t.equal(ring(evaluate(c, fromExtension('1001', '4008123456'))).source.route, 'main', 'our own number is routed, not dialled out');
  t.match(step(evaluate(c, fromExtension('1001', '13812345')), 0), { kind: 'reject', status: 484 }, 'incomplete number');
  const bare = compileTenant(tenantDoc());
  const refused = evaluate(bare, fromExtension('1001', '13812345678'));
  t.match(step(refused, 0), { kind: 'reject', status: 403 });
  t.match(refused.explanation.summary, /outbound caller ID/);
  t.match(ring(evaluate(bare, fromExtension('1001', '110'))).groups[0]?.targets[0], { number: '110', gateways: [{ dial: '110' }] }, 'emergency calls go out even without a caller ID');
  const noGateway = compileTenant(tenantDoc({ outboundGateways: [] }));
  t.match(step(evaluate(noGateway, fromExtension('1001', '119')), 0), { kind: 'reject', status: 503 });
  t.match(step(evaluate(c, fromExtension('1999', '1001')), 0), { kind: 'reject', status: 403 }, 'unknown calling extension');
});

t.test('gateway order: the callee\'s carrier first (ported beats segment), then priority; prefixes limit reach', async (t) => {
  const c = compileTenant(tenantDoc({
    outboundGateways: [
      { id: 'cheap', host: 'a.example.invalid', priority: 1 },
      { id: 'cmcc', host: 'b.example.invalid', priority: 5, carriers: ['cmcc'] },
      { id: 'ctcc', host: 'c.example.invalid', priority: 5, carriers: ['ctcc'] },
      { id: 'intl', host: 'd.example.invalid', priority: 0, prefixes: ['+1', '+44'] },
    ],
    routes: [route('main', [{ kind: 'ring', strategy: 'sequential', targets: [{ number: '13812345678' }, { number: '13812340000' }, { number: '02166668888' }, { number: '+14155552671' }] }])],
  }));
  const global = compileGlobal({ carriers: { segments: [{ prefix: '138', carrier: 'cmcc' }], ported: [{ number: '13812340000', carrier: 'ctcc' }] } });
  const targets = ring(evaluate(c, facts(), { global })).groups.map((g) => g.targets[0]);
  const gw = (i: number) => { const x = targets[i]; return x?.kind === 'external' ? x.gateways.map((h) => h.gateway) : []; };
  const carrier = (i: number) => { const x = targets[i]; return x?.kind === 'external' ? x.carrier : undefined; };
  t.same(gw(0), ['cmcc', 'cheap', 'ctcc'], 'a 138 mobile: its carrier\'s gateway first');
  t.same(carrier(0), { id: 'cmcc', source: 'segment' });
  t.same(gw(1), ['ctcc', 'cheap', 'cmcc'], 'ported to China Telecom');
  t.same(carrier(1), { id: 'ctcc', source: 'ported' });
  t.same(gw(2), ['cheap', 'cmcc', 'ctcc'], 'landlines: by priority');
  t.same(gw(3), ['intl', 'cheap', 'cmcc', 'ctcc'], 'the international gateway reaches +1');
  t.same(ring(evaluate(c, facts())).groups[0]?.targets[0], {
    kind: 'external', number: '+8613812345678', timeoutMs: 20000,
    gateways: ['cheap', 'cmcc', 'ctcc'].map((g, i) => ({ gateway: g, host: `${'abc'[i] ?? ''}.example.invalid`, port: 5060, transport: 'udp', dial: '13812345678', callerId: '13812345678' })),
  }, 'without carrier data: priority order, no carrier');

  // The tenant's own portability table wins over the operator's (it may know of a port the operator's import has not caught up with).
  const own = compileTenant(tenantDoc({
    outboundGateways: [
      { id: 'cheap', host: 'a.example.invalid', priority: 1 },
      { id: 'cmcc', host: 'b.example.invalid', priority: 5, carriers: ['cmcc'] },
      { id: 'ctcc', host: 'c.example.invalid', priority: 5, carriers: ['ctcc'] },
    ],
    ported: [{ number: '+8613812340000', carrier: 'cmcc' }, { number: '13812345678', carrier: 'ctcc' }],
    routes: [route('main', [{ kind: 'ring', strategy: 'sequential', targets: [{ number: '13812345678' }, { number: '13812340000' }] }])],
  }));
  const mine = ring(evaluate(own, facts(), { global })).groups.map((g) => g.targets[0]);
  t.match(mine[0], { carrier: { id: 'ctcc', source: 'ported' }, gateways: [{ gateway: 'ctcc' }] }, 'ported by the tenant\'s table, where the global one knows only the segment');
  t.match(mine[1], { carrier: { id: 'cmcc', source: 'ported' }, gateways: [{ gateway: 'cmcc' }] }, 'the tenant\'s table beats the global one');
});

t.test('plans are plain JSON', async (t) => {
  const c = compileTenant(tenantDoc({
    groups: [{ id: 'g', strategy: 'round-robin', members: [{ extension: '1001' }, { number: '13812345678' }] }],
    routes: [route('main', [{ kind: 'ringGroup', group: 'g', overallTimeoutMs: 60000 }, { kind: 'announce', prompt: 'bye' }])],
  }));
  const ev = evaluate(c, facts(), { explain: true });
  t.same(JSON.parse(JSON.stringify(ev)), ev, 'plan and explanation survive JSON unchanged');
  t.equal(ev.plan.tenant, 't1');
  t.equal(ring(ev).overallTimeoutMs, 60000);
});
