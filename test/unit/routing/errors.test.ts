/** One list of coded errors: every code is described, every non-routed outcome has one, and explanations carry it. */
import t from 'tap';
import { compileTenant, evaluate, OUTCOME_CODES } from '../../../src/routing/engine.js';
import { formatIssues, RoutingError, ROUTING_ERROR_CODES } from '../../../src/routing/errors.js';
import { facts, tenantDoc } from './fixtures.js';

t.test('codes are unique, prefixed and described', async (t) => {
  for (const [code, text] of Object.entries(ROUTING_ERROR_CODES)) {
    t.match(code, /^DP_ROUTE_[A-Z_]+$/, code);
    t.ok(text.length > 5, `${code} has a description`);
  }
  for (const [outcome, code] of Object.entries(OUTCOME_CODES)) t.ok(code in ROUTING_ERROR_CODES, `${outcome} → ${code} is a listed code`);
  t.equal(new Set(Object.values(OUTCOME_CODES)).size, Object.keys(OUTCOME_CODES).length, 'one code per outcome');
});

t.test('errors carry their code in name, code and message', async (t) => {
  const e = new RoutingError('DP_ROUTE_BAD_FACTS', 'time must be epoch milliseconds');
  t.equal(e.name, 'RoutingError');
  t.equal(e.code, 'DP_ROUTE_BAD_FACTS');
  t.equal(e.message, 'DP_ROUTE_BAD_FACTS: time must be epoch milliseconds');
  t.equal(formatIssues([{ path: '', message: 'a', code: 'DP_ROUTE_SCHEMA' }, { path: '/x', message: 'b', code: 'DP_ROUTE_REFERENCE' }]), '/: a\n/x: b');
});

t.test('explanations carry the code of their outcome', async (t) => {
  const c = compileTenant(tenantDoc({ blacklist: { numbers: ['13800000001'] } }));
  t.equal(evaluate(c, facts()).explanation.code, undefined, 'routed: no code');
  t.equal(evaluate(c, facts({ called: '4009999999' })).explanation.code, 'DP_ROUTE_NOT_FOUND');
  t.equal(evaluate(c, facts({ called: 'x' })).explanation.code, 'DP_ROUTE_BAD_CALLED');
  t.equal(evaluate(c, facts({ caller: '13800000001' })).explanation.code, 'DP_ROUTE_BLACKLISTED');
  t.equal(evaluate(c, facts({ origin: { kind: 'trunk', trunk: 'nope' } })).explanation.code, 'DP_ROUTE_REFUSED');
  t.equal(evaluate(c, facts({ ivr: { menu: 'gone', digits: '1' } })).explanation.code, 'DP_ROUTE_STALE');
  const picky = compileTenant(tenantDoc({ routes: [{ id: 'main', rules: [{ id: 'beijing-only', when: { callerRegion: { in: [{ province: '北京' }] } }, actions: [{ kind: 'voicemail', box: 'v' }] }] }] }));
  const none = evaluate(picky, facts({ callerRegion: { province: '上海' } }));
  t.equal(none.explanation.code, 'DP_ROUTE_NO_MATCH');
  t.match(none.plan.steps, [{ kind: 'reject', status: 480, reason: 'Temporarily Unavailable' }]);
});
