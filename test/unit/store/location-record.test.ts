import t from 'tap';
import { decodeAorRecord, storedVersion, toBinding, validBindings } from '../../../src/store/location-record.js';
import type { Binding } from '../../../src/sip/registrar/location-service.js';

const good: Binding = {
  aor: 'sip:alice@example.com',
  contact: 'sip:alice@192.0.2.1:5060',
  expiresAt: 1_700_000_060_000,
  q: 0.5,
  callId: 'abc@192.0.2.1',
  cseq: 7,
  path: ['<sip:edge.example.com;lr>'],
  flow: { transport: 'tcp', address: '192.0.2.1', port: 5060, connectionId: 'c1', node: 'n1' },
  instanceId: '<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>',
  userAgent: 'Phone/1.0',
  registeredAt: 1_700_000_000_000,
};
const goodJson = JSON.stringify(good);

t.test('the version is read only from the canonical prefix, like the Lua CAS script', async (t) => {
  const cases: [raw: string, version: number][] = [
    [`{"version":42,"bindings":[]}`, 42],
    [`{"version":0,"bindings":[]}`, 0],
    [`{"version":007,"bindings":[]}`, 7], // Lua's tonumber reads it the same way
    [`{"version":9007199254740991,"bindings":[]}`, 9_007_199_254_740_991],
    [`{"version":9007199254740992,"bindings":[]}`, 0], // beyond 2^53 - 1
    [`{"version":12345678901234567,"bindings":[]}`, 0], // 17 digits
    [`{"version":42,"bindings":garbage`, 42], // version readable even if the rest is not
    [`{"bindings":[],"version":42}`, 0], // other key order: not our format
    [`{ "version":42,"bindings":[]}`, 0],
    [`{"version":-1,"bindings":[]}`, 0],
    [`{"version":1.5,"bindings":[]}`, 0],
    [`{"version":"42","bindings":[]}`, 0],
    [`{"version":0x10,"bindings":[]}`, 0],
    ['', 0],
    ['null', 0],
    ['\u0000\u00ff garbage', 0],
  ];
  for (const [raw, version] of cases) t.equal(storedVersion(raw), version, JSON.stringify(raw));
});

t.test('decoding never throws and keeps what is well-formed', async (t) => {
  t.strictSame(decodeAorRecord(`{"version":3,"bindings":[${goodJson}]}`), { version: 3, bindings: [good] });
  t.strictSame(decodeAorRecord('not json'), { version: 0, bindings: [] });
  t.strictSame(decodeAorRecord(`{"version":3,"bindings":{}}`), { version: 3, bindings: [] }, 'bindings not an array');
  t.strictSame(decodeAorRecord(`{"version":3,"bindings":[${goodJson}`), { version: 3, bindings: [] }, 'truncated');
  t.strictSame(decodeAorRecord('[1,2,3]'), { version: 0, bindings: [] });
  t.strictSame(decodeAorRecord(`{"version":3,"bindings":[1,null,"x",${goodJson},{"contact":"sip:x@y"}]}`),
    { version: 3, bindings: [good] }, 'one bad binding does not take its siblings with it');
  t.strictSame(decodeAorRecord(`{"bindings":[${goodJson}],"version":3}`), { version: 0, bindings: [good] },
    'an older layout keeps its bindings; version 0 lets the next put overwrite it');
});

t.test('toBinding rejects each malformed field and drops unknown ones', async (t) => {
  const bad: [string, Record<string, unknown>][] = [
    ['contact not a string', { contact: 42 }],
    ['expiresAt missing', { expiresAt: undefined }],
    ['expiresAt not finite', { expiresAt: 'soon' }],
    ['q above 1', { q: 1.01 }],
    ['q negative', { q: -0.1 }],
    ['cseq fractional', { cseq: 1.5 }],
    ['cseq above 2^32-1', { cseq: 2 ** 32 }],
    ['path with a number', { path: ['<sip:a>', 1] }],
    ['path not an array', { path: '<sip:a>' }],
    ['flow missing', { flow: undefined }],
    ['flow port out of range', { flow: { ...good.flow, port: 70_000 } }],
    ['flow connectionId not a string', { flow: { ...good.flow, connectionId: 5 } }],
    ['instanceId not a string', { instanceId: true }],
    ['registeredAt missing', { registeredAt: undefined }],
  ];
  for (const [name, change] of bad) t.equal(toBinding({ ...good, ...change }), undefined, name);
  t.strictSame(toBinding({ ...good, extra: 'from a newer release' }), good, 'unknown fields dropped');
  const { instanceId: _i, userAgent: _u, ...minimal } = good;
  t.strictSame(toBinding(minimal), minimal, 'optional fields stay absent');
});

t.test('validBindings copies good lists and throws on a bad one', async (t) => {
  const copy = validBindings(good.aor, [good]);
  t.strictSame(copy, [good]);
  t.not(copy[0], good, 'a copy, not the same object');
  t.not(copy[0]?.flow, good.flow, 'nested objects copied too');
  t.throws(() => validBindings(good.aor, [good, { ...good, q: 2 }]), { name: 'StoreError', code: 'DP_STORE_BAD_BINDING' });
});
