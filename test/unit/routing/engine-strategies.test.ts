/**
 * Ring strategies: the order is a pure function of the facts (counter value,
 * seed), extensions bring their bound mobiles along, and timeouts land on
 * targets and groups the way the proxy's ForkPlan wants them.
 */
import t from 'tap';
import { applyCounter, compileTenant, evaluate } from '../../../src/routing/engine.js';
import type { RingAction, RingStrategy, TenantDocument } from '../../../src/routing/model.js';
import { ext, facts, groupsOf, orderOf, ring, route, tenantDoc } from './fixtures.js';

const THREE = [{ extension: '1001' }, { extension: '1002' }, { extension: '1003' }];

function withRing(action: Omit<RingAction, 'kind'>, over: Partial<TenantDocument> = {}) {
  return compileTenant(tenantDoc({ routes: [route('main', [{ kind: 'ring', ...action }])], ...over }));
}

t.test('sequential: configured order, one target per group, per-target timeouts', async (t) => {
  const c = withRing({ strategy: 'sequential', targets: [{ extension: '1001', timeoutMs: 5000 }, { extension: '1002' }, { number: '13812345678' }], targetTimeoutMs: 15000, overallTimeoutMs: 40000 });
  const s = ring(evaluate(c, facts()));
  t.same(groupsOf(s), [['1001'], ['1002'], ['+8613812345678']]);
  t.same(s.groups.map((g) => g.timeoutMs), [5000, 15000, 15000], 'a target timeout overrides the action\'s');
  t.equal(s.overallTimeoutMs, 40000);
  t.equal(s.strategy, 'sequential');
  t.equal(s.counter, undefined, 'no counter outside round-robin');
});

t.test('simultaneous: one group, the group waits for its slowest target', async (t) => {
  const c = withRing({ strategy: 'simultaneous', targets: [{ extension: '1001', timeoutMs: 5000 }, { extension: '1002', timeoutMs: 30000 }, { extension: '1003' }] });
  const s = ring(evaluate(c, facts()));
  t.same(groupsOf(s), [['1001', '1002', '1003']]);
  t.equal(s.groups[0]?.timeoutMs, 30000);
  t.same(s.groups[0]?.targets.map((x) => x.timeoutMs), [5000, 30000, 20000], 'each branch keeps its own timeout (tenant default 20 s)');
});

t.test('the default strategy of an inline ring is simultaneous', async (t) => {
  t.same(groupsOf(ring(evaluate(withRing({ targets: THREE }), facts()))), [['1001', '1002', '1003']]);
});

t.test('round-robin: the plan names the counter; the value picks the first target', async (t) => {
  const c = withRing({ strategy: 'round-robin', targets: THREE });
  const pending = ring(evaluate(c, facts()));
  t.same(pending.counter, { key: 'rr:t1:route:main:only:0' }, 'no value in the facts: the executor must INCR the key');
  t.same(orderOf(pending), ['1001', '1002', '1003'], 'pending steps come in configured order');
  const table: Array<[number, string[]]> = [
    [1, ['1001', '1002', '1003']], [2, ['1002', '1003', '1001']], [3, ['1003', '1001', '1002']], [4, ['1001', '1002', '1003']], [3002, ['1002', '1003', '1001']],
  ];
  for (const [value, order] of table) {
    const s = ring(evaluate(c, facts({ counters: { 'rr:t1:route:main:only:0': value } })));
    t.same(orderOf(s), order, `INCR returned ${value}`);
    t.same(s.counter, { key: 'rr:t1:route:main:only:0', value });
    t.same(applyCounter(pending, value), s, `applyCounter(pending, ${value}) equals evaluating with the counter`);
  }
  t.throws(() => applyCounter(ring(evaluate(withRing({ strategy: 'sequential', targets: THREE }), facts())), 1), /not a round-robin step/);
});

t.test('round-robin over a group: one counter per group, shared by every rule using it', async (t) => {
  const c = compileTenant(tenantDoc({
    groups: [{ id: 'sales', strategy: 'round-robin', members: THREE }],
    numbers: [{ number: '4008123456', route: 'a' }, { number: '4008123457', route: 'b' }],
    routes: [route('a', [{ kind: 'ringGroup', group: 'sales' }]), route('b', [{ kind: 'ringGroup', group: 'sales' }])],
  }));
  t.same(ring(evaluate(c, facts())).counter, { key: 'rr:t1:group:sales' });
  t.same(ring(evaluate(c, facts({ called: '4008123457' }))).counter, { key: 'rr:t1:group:sales' });
  t.same(orderOf(ring(evaluate(c, facts({ counters: { 'rr:t1:group:sales': 2 } })))), ['1002', '1003', '1001']);
});

t.test('random: reproducible for a seed, every order reachable, fair first pick', async (t) => {
  const c = withRing({ strategy: 'random', targets: THREE });
  t.same(orderOf(ring(evaluate(c, facts({ seed: 7 })))), orderOf(ring(evaluate(c, facts({ seed: 7 })))), 'same seed, same order');
  const orders = new Map<string, number>();
  const first = new Map<string, number>();
  const runs = 3000;
  let notPermutations = 0;
  for (let seed = 0; seed < runs; seed++) {
    const o = orderOf(ring(evaluate(c, facts({ seed }))));
    if (new Set(o).size !== 3) notPermutations++;
    orders.set(o.join(','), (orders.get(o.join(',')) ?? 0) + 1);
    first.set(o[0] ?? '', (first.get(o[0] ?? '') ?? 0) + 1);
  }
  t.equal(notPermutations, 0, 'every order is a permutation: nobody dropped or doubled');
  t.equal(orders.size, 6, 'all 6 orders occur');
  for (const [who, n] of first) t.ok(Math.abs(n / runs - 1 / 3) < 0.04, `${who} rings first in ${n}/${runs} calls`);
});

t.test('weighted: first pick proportional to weight, the rest by weight too', async (t) => {
  const c = withRing({ strategy: 'weighted', targets: [{ extension: '1001', weight: 6 }, { extension: '1002', weight: 3 }, { extension: '1003', weight: 1 }] });
  const runs = 5000;
  const first = new Map<string, number>();
  const secondAfter1001 = new Map<string, number>();
  let after1001 = 0;
  for (let seed = 0; seed < runs; seed++) {
    const o = orderOf(ring(evaluate(c, facts({ seed }))));
    first.set(o[0] ?? '', (first.get(o[0] ?? '') ?? 0) + 1);
    if (o[0] === '1001') {
      after1001++;
      secondAfter1001.set(o[1] ?? '', (secondAfter1001.get(o[1] ?? '') ?? 0) + 1);
    }
  }
  const share = (m: Map<string, number>, k: string, total: number) => (m.get(k) ?? 0) / total;
  t.ok(Math.abs(share(first, '1001', runs) - 0.6) < 0.03, `1001 first ${share(first, '1001', runs)} ≈ 0.6`);
  t.ok(Math.abs(share(first, '1002', runs) - 0.3) < 0.03, `1002 first ${share(first, '1002', runs)} ≈ 0.3`);
  t.ok(Math.abs(share(first, '1003', runs) - 0.1) < 0.02, `1003 first ${share(first, '1003', runs)} ≈ 0.1`);
  t.ok(Math.abs(share(secondAfter1001, '1002', after1001) - 0.75) < 0.04, 'after 1001, 1002 comes second 3 times in 4');
  t.same(orderOf(ring(evaluate(c, facts({ seed: 99 })))), orderOf(ring(evaluate(c, facts({ seed: 99 })))), 'reproducible');
});

t.test('two randomised steps in one plan draw independent orders', async (t) => {
  const c = compileTenant(tenantDoc({ routes: [route('main', [
    { kind: 'ring', strategy: 'random', targets: THREE },
    { kind: 'ring', strategy: 'random', targets: THREE },
  ])] }));
  let differ = 0;
  for (let seed = 0; seed < 200; seed++) {
    const ev = evaluate(c, facts({ seed }));
    if (orderOf(ring(ev, 0)).join() !== orderOf(ring(ev, 1)).join()) differ++;
  }
  t.ok(differ > 100, `the second step is not a copy of the first (${differ}/200 differ)`);
});

t.test('an extension\'s bound mobile rings with it, or right after it', async (t) => {
  const exts = [
    ext('1001', { alsoRing: { numbers: ['13800000001'], mode: 'together' } }),
    ext('1002', { alsoRing: { numbers: ['13800000002'], mode: 'after' }, ringTimeoutMs: 12000 }),
    ext('1003'),
  ];
  const cases: Array<[RingStrategy, string[][]]> = [
    ['sequential', [['1001', '+8613800000001'], ['1002'], ['+8613800000002'], ['1003']]],
    ['simultaneous', [['1001', '+8613800000001', '1002', '1003'], ['+8613800000002']]],
  ];
  for (const [strategy, groups] of cases) {
    const c = compileTenant(tenantDoc({ extensions: exts, routes: [route('main', [{ kind: 'ring', strategy, targets: THREE }])] }));
    const s = ring(evaluate(c, facts()));
    t.same(groupsOf(s), groups, strategy);
    const mobile = s.groups.flatMap((g) => g.targets).find((x) => x.kind === 'external' && x.number === '+8613800000002');
    t.match(mobile, { forExtension: '1002', timeoutMs: 12000 }, `${strategy}: the mobile carries its extension and timeout`);
  }
  // Round-robin keeps a mobile behind its extension when rotating.
  const rr = compileTenant(tenantDoc({ extensions: exts, routes: [route('main', [{ kind: 'ring', strategy: 'round-robin', targets: THREE }])] }));
  const pending = ring(evaluate(rr, facts()));
  t.same(groupsOf(applyCounter(pending, 2)), [['1002'], ['+8613800000002'], ['1003'], ['1001', '+8613800000001']]);
  t.same(groupsOf(applyCounter(pending, 3)), [['1003'], ['1001', '+8613800000001'], ['1002'], ['+8613800000002']]);
});

t.test('external targets go out through gateways, numbers written as each gateway wants', async (t) => {
  const c = withRing({ strategy: 'sequential', targets: [{ number: '13812345678' }, { number: '057188888888' }] }, {
    outboundGateways: [
      { id: 'national', host: 'a.example.invalid', priority: 1 },
      { id: 'e164', host: 'b.example.invalid', port: 5080, transport: 'tcp', priority: 2, numberFormat: 'e164' },
      { id: 'tech', host: 'c.example.invalid', priority: 3, numberFormat: 'digits', dialPrefix: '17909' },
    ],
  });
  const s = ring(evaluate(c, facts({ caller: '02166668888' })));
  const mobile = s.groups[0]?.targets[0];
  t.match(mobile, {
    kind: 'external', number: '+8613812345678',
    gateways: [
      { gateway: 'national', host: 'a.example.invalid', port: 5060, transport: 'udp', dial: '13812345678', callerId: '02166668888' },
      { gateway: 'e164', port: 5080, transport: 'tcp', dial: '+8613812345678', callerId: '+862166668888' },
      { gateway: 'tech', dial: '179098613812345678', callerId: '862166668888' },
    ],
  }, 'the original caller is presented on forwarded legs');
  t.match(s.groups[1]?.targets[0], { number: '+8657188888888', gateways: [{ dial: '057188888888' }] });
});
