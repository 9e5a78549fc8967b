/** Called-number resolution: exact beats blocks, longest block wins, trunks deliver only their numbers. */
import t from 'tap';
import { compileTenant, evaluate } from '../../../src/routing/engine.js';
import { RoutingError } from '../../../src/routing/errors.js';
import { DigitTrie, rangeToBlocks } from '../../../src/routing/digit-trie.js';
import fc from 'fast-check';
import { facts, route, step, tenantDoc } from './fixtures.js';

/** Each route rejects with its own status so the plan names the route that won. */
const marker = (id: string, status: number) => route(id, [{ kind: 'reject', status }]);

const blocks = compileTenant(tenantDoc({
  numbers: [
    { number: '057188881234', route: 'exact' },
    { range: { from: '057188881000', to: '057188881999' }, route: 'range' },
    { range: { from: '057188881200', to: '057188881299' }, route: 'nested' },
    { prefix: '0571888', route: 'short-prefix' },
    { prefix: '05718888', route: 'long-prefix' },
    { number: '95588', route: 'bank' },
    { number: '4008123456', route: 'hotline' },
  ],
  routes: [marker('exact', 601), marker('range', 602), marker('nested', 603), marker('short-prefix', 604), marker('long-prefix', 605), marker('bank', 606), marker('hotline', 607)],
}));

t.test('exact number, nested range, range, longest prefix', async (t) => {
  const table: Array<[string, number, string]> = [
    ['057188881234', 601, 'exact beats the nested range containing it'],
    ['+8657188881234', 601, 'same number in E.164'],
    ['057188881250', 603, 'nested range beats the outer range'],
    ['057188881500', 602, 'range beats the shorter open prefixes'],
    ['057188882000', 605, 'outside the ranges: the longer prefix'],
    ['05718888200', 605, '7-digit subscriber: ranges need one length, the prefix does not'],
    ['05718880000', 604, 'only the shorter prefix matches'],
    ['95588', 606, 'short service numbers match exactly'],
    ['+864008123456', 607, '400 in E.164'],
    ['864008123456', 607, '400 with 86'],
    ['00864008123456', 607, '400 with 0086'],
    ['400-812-3456', 607, '400 with separators'],
  ];
  for (const [called, status, why] of table) {
    const ev = evaluate(blocks, facts({ called }));
    const s = step(ev, 0);
    t.equal(s.kind === 'reject' ? s.status : 0, status, `${called}: ${why} (${ev.explanation.summary})`);
  }
  const ev = evaluate(blocks, facts({ called: '057188881500' }));
  t.same(ev.explanation.called.match, { kind: 'range', entry: 'range 057188881000..057188881999 (/numbers/1)' });
  t.same(evaluate(blocks, facts({ called: '05718880000' })).explanation.called.match, { kind: 'prefix', entry: 'prefix 0571888 (/numbers/3)' });
});

t.test('unknown, unreadable, and unknown trunk', async (t) => {
  const unknown = evaluate(blocks, facts({ called: '057199990000' }));
  t.match(step(unknown, 0), { kind: 'reject', status: 404, reason: 'Not Found' });
  t.equal(unknown.explanation.outcome, 'not-found');
  const garbage = evaluate(blocks, facts({ called: 'alice' }));
  t.match(step(garbage, 0), { kind: 'reject', status: 484 });
  t.equal(garbage.explanation.outcome, 'invalid-number');
  const trunk = evaluate(blocks, facts({ origin: { kind: 'trunk', trunk: 'evil' } }));
  t.match(step(trunk, 0), { kind: 'reject', status: 403 });
  t.equal(trunk.explanation.outcome, 'refused');
});

t.test('a trunk delivers only the numbers it is provisioned for', async (t) => {
  const c = compileTenant(tenantDoc({
    numbers: [{ number: '4008123456', route: 'main' }, { number: '057188880000', route: 'main' }, { number: '95588', route: 'main' }],
    inboundTrunks: [{ id: 'carrier', sources: ['10.0.0.1'], numbers: ['400812', '95588'] }, { id: 'local', sources: ['10.0.0.2'], areaCode: '571' }],
  }));
  t.equal(step(evaluate(c, facts({ called: '4008123456' })), 0).kind, 'ring', 'provisioned 400 number');
  t.equal(step(evaluate(c, facts({ called: '95588' })), 0).kind, 'ring', 'provisioned short number');
  const other = evaluate(c, facts({ called: '057188880000' }));
  t.match(step(other, 0), { kind: 'reject', status: 403 });
  t.match(other.explanation.summary, /trunk "carrier" may not deliver \+8657188880000/);
  const local = evaluate(c, facts({ origin: { kind: 'trunk', trunk: 'local' }, called: '88880000' }));
  t.equal(step(local, 0).kind, 'ring', 'a local number completed with the trunk\'s area code');
});

t.test('facts for another tenant are a programming error', async (t) => {
  t.throws(() => evaluate(blocks, facts({ tenant: 'other' })), { name: 'RoutingError', code: 'DP_ROUTE_BAD_FACTS' });
  t.throws(() => evaluate(blocks, facts({ time: Number.NaN })), RoutingError);
  t.throws(() => evaluate(blocks, facts({ seed: 1.5 })), /seed/);
});

t.test('ranges cut into aligned blocks', async (t) => {
  t.same(rangeToBlocks('1000', '1999'), ['1']);
  t.same(rangeToBlocks('1200', '1299'), ['12']);
  t.same(rangeToBlocks('1234', '1234'), ['1234']);
  t.same(rangeToBlocks('1250', '1399'), ['125', '126', '127', '128', '129', '13']);
  t.same(rangeToBlocks('0000', '9999'), ['']);
  t.throws(() => rangeToBlocks('200', '100'), /reversed/);
  t.throws(() => rangeToBlocks('10', '100'), /one length/);
  // Property: the blocks cover exactly the range, without overlap.
  fc.assert(fc.property(fc.integer({ min: 0, max: 99999 }), fc.integer({ min: 0, max: 99999 }), (a, b) => {
    const [lo, hi] = a <= b ? [a, b] : [b, a];
    const from = String(lo).padStart(5, '0');
    const to = String(hi).padStart(5, '0');
    const trie = new DigitTrie<number>();
    const bs = rangeToBlocks(from, to);
    bs.forEach((p, i) => trie.addBlock(p, 5, i));
    let covered = 0;
    for (const p of bs) covered += 10 ** (5 - p.length);
    if (covered !== hi - lo + 1) return false;
    for (const probe of [lo, hi, lo - 1, hi + 1, Math.floor((lo + hi) / 2)]) {
      if (probe < 0 || probe > 99999) continue;
      const inside = probe >= lo && probe <= hi;
      if ((trie.longest(String(probe).padStart(5, '0')) !== undefined) !== inside) return false;
    }
    return true;
  }), { numRuns: 300 });
  t.pass('blocks cover the range exactly');
});
