/** RFC 3261 §10.3 binding rules, on the pure applyRegister. */
import t from 'tap';
import { applyRegister, DEFAULT_POLICY, type RegisterInput } from '../../../src/sip/registrar/registrar.js';
import { parseNameAddr } from '../../../src/sip/message/name-addr.js';
import type { Binding } from '../../../src/sip/registrar/location-service.js';

const NOW = 1_700_000_000_000;
const flow = { transport: 'udp', address: '127.0.0.1', port: 5070 };
function input(contacts: string[] | '*', over: Partial<RegisterInput> = {}): RegisterInput {
  return {
    aor: 'sip:1001@dialplane', callId: 'c1', cseq: 1, expiresHeader: undefined, path: [], flow,
    contacts: contacts === '*' ? '*' : contacts.map((c) => parseNameAddr(c, 'Contact')),
    ...over,
  };
}
function bindings(r: ReturnType<typeof applyRegister>): Binding[] {
  if (!r.ok) throw new Error(`expected ok, got ${r.status} ${r.reason}`);
  return r.bindings;
}

t.test('a new contact is bound with the default expiry of 3600 s (§10.2.1.1)', async (t) => {
  const b = bindings(applyRegister([], input(['<sip:1001@10.0.0.1:5070>']), DEFAULT_POLICY, NOW));
  t.equal(b.length, 1);
  t.equal(b[0]?.expiresAt, NOW + 3600_000);
  t.equal(b[0]?.contact, 'sip:1001@10.0.0.1:5070');
  t.equal(b[0]?.q, 1);
});

t.test('the expires contact parameter wins over the Expires header', async (t) => {
  const b = bindings(applyRegister([], input(['<sip:a@h>;expires=120'], { expiresHeader: 600 }), DEFAULT_POLICY, NOW));
  t.equal(b[0]?.expiresAt, NOW + 120_000);
  const c = bindings(applyRegister([], input(['<sip:a@h>'], { expiresHeader: 600 }), DEFAULT_POLICY, NOW));
  t.equal(c[0]?.expiresAt, NOW + 600_000);
});

t.test('expiry below the minimum is refused with 423 and Min-Expires (§10.3 step 7)', async (t) => {
  const r = applyRegister([], input(['<sip:a@h>;expires=10']), DEFAULT_POLICY, NOW);
  t.same(r, { ok: false, status: 423, reason: 'Interval Too Brief', headers: [['Min-Expires', '60']] });
});

t.test('expiry above the maximum is shortened', async (t) => {
  const b = bindings(applyRegister([], input(['<sip:a@h>'], { expiresHeader: 1_000_000 }), DEFAULT_POLICY, NOW));
  t.equal(b[0]?.expiresAt, NOW + DEFAULT_POLICY.maxExpires * 1000);
});

t.test('several contacts per AOR, ordered by q then recency', async (t) => {
  const b = bindings(applyRegister([], input(['<sip:a@h1>;q=0.5', '<sip:b@h2>;q=1.0', '<sip:c@h3>']), DEFAULT_POLICY, NOW));
  t.same(b.map((x) => [x.contact, x.q]), [['sip:b@h2', 1], ['sip:c@h3', 1], ['sip:a@h1', 0.5]]);
});

t.test('an invalid q-value is a 400', async (t) => {
  const r = applyRegister([], input(['<sip:a@h>;q=1.5']), DEFAULT_POLICY, NOW);
  t.equal(r.ok ? 200 : r.status, 400);
});

t.test('same Call-ID with a CSeq not higher aborts the whole update (§10.3 step 7)', async (t) => {
  const first = bindings(applyRegister([], input(['<sip:a@h>'], { cseq: 5 }), DEFAULT_POLICY, NOW));
  const r = applyRegister(first, input(['<sip:a@h>', '<sip:b@h>'], { cseq: 5 }), DEFAULT_POLICY, NOW);
  t.equal(r.ok, false);
  const r2 = applyRegister(first, input(['<sip:a@h>'], { cseq: 4 }), DEFAULT_POLICY, NOW);
  t.equal(r2.ok, false);
  const ok = bindings(applyRegister(first, input(['<sip:a@h>'], { cseq: 6, expiresHeader: 300 }), DEFAULT_POLICY, NOW));
  t.equal(ok[0]?.expiresAt, NOW + 300_000, 'higher CSeq updates');
});

t.test('a different Call-ID updates or removes regardless of CSeq', async (t) => {
  const first = bindings(applyRegister([], input(['<sip:a@h>'], { cseq: 50 }), DEFAULT_POLICY, NOW));
  const b = bindings(applyRegister(first, input(['<sip:a@h>;expires=0'], { callId: 'other', cseq: 1 }), DEFAULT_POLICY, NOW));
  t.same(b, []);
});

t.test('Contact * with Expires: 0 removes every binding; without it is a 400 (§10.3 step 6)', async (t) => {
  const first = bindings(applyRegister([], input(['<sip:a@h>', '<sip:b@h>']), DEFAULT_POLICY, NOW));
  t.same(bindings(applyRegister(first, input('*', { expiresHeader: 0, cseq: 2 }), DEFAULT_POLICY, NOW)), []);
  const bad = applyRegister(first, input('*', { cseq: 2 }), DEFAULT_POLICY, NOW);
  t.equal(bad.ok ? 200 : bad.status, 400);
});

t.test('expired bindings are dropped when computing the new set', async (t) => {
  const first = bindings(applyRegister([], input(['<sip:a@h>;expires=60']), DEFAULT_POLICY, NOW));
  const later = bindings(applyRegister(first, input(['<sip:b@h>'], { callId: 'x' }), DEFAULT_POLICY, NOW + 61_000));
  t.same(later.map((b) => b.contact), ['sip:b@h']);
});

t.test('RFC 5626 +sip.instance replaces the old binding of the same instance', async (t) => {
  const inst = '"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"';
  const first = bindings(applyRegister([], input([`<sip:a@h:1111>;+sip.instance=${inst}`]), DEFAULT_POLICY, NOW));
  const second = bindings(applyRegister(first, input([`<sip:a@h:2222>;+sip.instance=${inst}`], { callId: 'new' }), DEFAULT_POLICY, NOW));
  t.same(second.map((b) => b.contact), ['sip:a@h:2222']);
  t.equal(second[0]?.instanceId, '<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>');
});

t.test('non-SIP contacts are refused (RFC 4475 unksm2)', async (t) => {
  const r = applyRegister([], input(['<name:John_Smith>']), DEFAULT_POLICY, NOW);
  t.equal(r.ok ? 200 : r.status, 400);
});

t.test('more than maxContacts bindings is refused', async (t) => {
  const many = Array.from({ length: DEFAULT_POLICY.maxContacts + 1 }, (_, i) => `<sip:u@h${i}>`);
  const r = applyRegister([], input(many), DEFAULT_POLICY, NOW);
  t.equal(r.ok ? 200 : r.status, 403);
});

t.test('Path values are stored with the binding (RFC 3327)', async (t) => {
  const b = bindings(applyRegister([], input(['<sip:a@h>'], { path: ['<sip:edge.example.com;lr>'] }), DEFAULT_POLICY, NOW));
  t.same(b[0]?.path, ['<sip:edge.example.com;lr>']);
});

t.test('contact-params are not URI params (RFC 4475 cparam01/cparam02)', async (t) => {
  const a = bindings(applyRegister([], input(['sip:+19725552222@gw1.example.net;unknownparam']), DEFAULT_POLICY, NOW));
  t.equal(a[0]?.contact, 'sip:+19725552222@gw1.example.net');
  const b = bindings(applyRegister([], input(['<sip:+19725552222@gw1.example.net;unknownparam>']), DEFAULT_POLICY, NOW));
  t.equal(b[0]?.contact, 'sip:+19725552222@gw1.example.net;unknownparam');
});
