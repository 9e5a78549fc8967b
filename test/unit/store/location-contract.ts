/**
 * Behaviour every LocationService must have, run against each store (the
 * embedded one in test/unit/store, the Redis one in test/integration).
 *
 * Time is always passed as `now`; nothing here sleeps. Bindings expire an
 * hour after the suite starts (real time), so a store that also lets its
 * backend expire data (Redis PEXPIREAT) keeps it for the whole run, and the
 * "later" instants are simply passed to `get`/`list`.
 */
import type { Test } from 'tap';
import type { Binding, LocationService } from '../../../src/sip/registrar/location-service.js';

export interface LocationStoreUnderTest {
  store: LocationService;
  cleanup: () => Promise<void>;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** ASCII-only rendering for assertion messages (U+2028 and friends would break TAP lines). */
function show(s: string): string {
  return JSON.stringify(s).replace(/[^\x20-\x7e]/gu, (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`);
}

export function locationContract(t: Test, make: () => Promise<LocationStoreUnderTest>): void {
  const T0 = Date.now();
  const LATER = T0 + 2 * HOUR;

  function binding(aor: string, n: number, fields: Partial<Binding> = {}): Binding {
    return {
      aor,
      contact: `sip:phone${n}@192.0.2.${(n % 250) + 1}:5060;transport=udp`,
      expiresAt: T0 + HOUR,
      q: 1,
      callId: `call-${n}@example.com`,
      cseq: n + 1,
      path: [],
      flow: { transport: 'udp', address: `198.51.100.${(n % 250) + 1}`, port: 5060 + n },
      registeredAt: T0,
      ...fields,
    };
  }

  async function fresh(t: Test): Promise<LocationService> {
    const { store, cleanup } = await make();
    t.teardown(cleanup);
    return store;
  }

  t.test('an AOR that was never written has version 0 and no bindings', async (t) => {
    const store = await fresh(t);
    t.strictSame(await store.get('sip:nobody@example.com', T0), { version: 0, bindings: [] });
    t.strictSame(await store.list(T0), []);
  });

  t.test('put with the current version commits the bindings and bumps the version', async (t) => {
    const store = await fresh(t);
    const aor = 'sip:alice@example.com';
    const first = [binding(aor, 1)];
    t.equal(await store.put(aor, 0, first), true, 'creating with version 0 succeeds');
    const r1 = await store.get(aor, T0);
    t.ok(Number.isSafeInteger(r1.version) && r1.version > 0, `version is a positive integer (${r1.version})`);
    t.strictSame(r1.bindings, first);

    const second = [binding(aor, 1), binding(aor, 2)];
    t.equal(await store.put(aor, r1.version, second), true, 'updating with the read version succeeds');
    const r2 = await store.get(aor, T0);
    t.ok(r2.version > r1.version, `version grows (${r1.version} -> ${r2.version})`);
    t.strictSame(r2.bindings, second);
    t.strictSame(await store.list(T0), [aor]);
  });

  t.test('put with a stale version fails and changes nothing', async (t) => {
    const store = await fresh(t);
    const aor = 'sip:bob@example.com';
    t.equal(await store.put(aor, 0, [binding(aor, 1)]), true);
    const stale = (await store.get(aor, T0)).version;
    t.equal(await store.put(aor, stale, [binding(aor, 2)]), true);
    const current = await store.get(aor, T0);

    t.equal(await store.put(aor, stale, [binding(aor, 3)]), false, 'stale version loses');
    t.equal(await store.put(aor, stale, []), false, 'stale version cannot remove either');
    t.equal(await store.put(aor, 0, [binding(aor, 4)]), false, 'version 0 does not overwrite an existing AOR');
    t.equal(await store.put(aor, current.version + 1000, [binding(aor, 5)]), false, 'a future version loses');
    t.strictSame(await store.get(aor, T0), current, 'record unchanged');

    t.equal(await store.put('sip:ghost@example.com', 7, [binding('sip:ghost@example.com', 1)]), false,
      'a non-zero version does not create an AOR');
    t.strictSame(await store.get('sip:ghost@example.com', T0), { version: 0, bindings: [] });
    t.strictSame(await store.list(T0), [aor]);
  });

  t.test('of 20 writers racing with the same version exactly one wins', async (t) => {
    const store = await fresh(t);
    const aor = 'sip:race@example.com';
    t.equal(await store.put(aor, 0, [binding(aor, 0)]), true);
    const { version } = await store.get(aor, T0);
    const attempts = Array.from({ length: 20 }, (_, i) => [binding(aor, 100 + i, { callId: `writer-${i}` })]);
    const results = await Promise.all(attempts.map((bindings) => store.put(aor, version, bindings)));
    const winners = results.flatMap((ok, i) => (ok ? [i] : []));
    t.equal(winners.length, 1, `exactly one winner (got ${winners.join(',')})`);
    const winner = winners[0];
    if (winner !== undefined) t.strictSame((await store.get(aor, T0)).bindings, attempts[winner]);

    const created = 'sip:new@example.com';
    const creators = await Promise.all([
      store.put(created, 0, [binding(created, 1)]),
      store.put(created, 0, [binding(created, 2)]),
    ]);
    t.equal(creators.filter(Boolean).length, 1, 'two writers creating the same AOR: one wins');
  });

  t.test('expired bindings disappear from get and from list', async (t) => {
    const store = await fresh(t);
    const aor = 'sip:carol@example.com';
    const short = binding(aor, 1, { expiresAt: T0 + MINUTE });
    const long = binding(aor, 2, { expiresAt: T0 + HOUR });
    t.equal(await store.put(aor, 0, [short, long]), true);

    t.strictSame((await store.get(aor, T0 + MINUTE - 1)).bindings, [short, long], 'both live 1 ms before');
    // RFC 3261 §10.3 step 7: a binding is gone once its expiration interval has passed;
    // a binding expiring at `now` is no longer current.
    t.strictSame((await store.get(aor, T0 + MINUTE)).bindings, [long], 'short one gone at its expiry');
    t.strictSame(await store.list(T0 + MINUTE), [aor], 'AOR still listed while one binding lives');

    const other = 'sip:dave@example.com';
    t.equal(await store.put(other, 0, [binding(other, 3, { expiresAt: T0 + MINUTE })]), true);
    t.strictSame(await store.list(T0), [aor, other].sort());
    t.strictSame(await store.list(T0 + MINUTE), [aor], 'AOR with only expired bindings is not listed');
    t.strictSame(await store.list(T0 + HOUR), [], 'nothing listed once all expired');
  });

  t.test('an AOR whose bindings all expired is forgotten and can be registered again', async (t) => {
    const store = await fresh(t);
    const aor = 'sip:erin@example.com';
    t.equal(await store.put(aor, 0, [binding(aor, 1), binding(aor, 2, { expiresAt: T0 + MINUTE })]), true);
    const expired = await store.get(aor, LATER);
    t.strictSame(expired.bindings, [], 'no bindings after expiry');
    t.strictSame(await store.list(LATER), []);

    const fresh2 = [binding(aor, 3, { expiresAt: LATER + HOUR })];
    t.equal(await store.put(aor, expired.version, fresh2), true, 'the version get reported is the one put accepts');
    t.strictSame((await store.get(aor, LATER)).bindings, fresh2);
    t.strictSame(await store.list(LATER), [aor]);
  });

  t.test('an empty list removes the AOR, and old versions stay dead afterwards', async (t) => {
    const store = await fresh(t);
    const aor = 'sip:frank@example.com';
    t.equal(await store.put(aor, 0, [binding(aor, 1)]), true);
    const held = await store.get(aor, T0);
    t.equal(await store.put(aor, held.version, []), true, 'removal with the current version succeeds');
    t.strictSame(await store.get(aor, T0), { version: 0, bindings: [] }, 'removed AOR reads as never written');
    t.strictSame(await store.list(T0), []);
    t.equal(await store.put(aor, 0, []), true, 'removing an absent AOR is a successful no-op');
    t.strictSame(await store.get(aor, T0), { version: 0, bindings: [] });

    // A registrar that read `held` before the removal must not win against a
    // new record created after it (no version reuse, no ABA).
    t.equal(await store.put(aor, 0, [binding(aor, 2)]), true);
    const recreated = await store.get(aor, T0);
    t.not(recreated.version, held.version, 'recreated AOR has a new version');
    t.equal(await store.put(aor, held.version, [binding(aor, 3)]), false, 'pre-removal version loses');
    t.strictSame(await store.get(aor, T0), recreated);
  });

  t.test('escaped and non-ASCII AORs and contacts round-trip exactly', async (t) => {
    const store = await fresh(t);
    const aors = [
      'sip:%00user@example.com',
      'sip:user;par=u%40example.net@example.com',
      'sip:用户@例子.中国',
      'sip:\u{1F600}@example.com',
      'sip:a\u0000b@example.com',
      'sip:{brace}@example.com',
      'sip:x}y{z@example.com',
      'sip:"q"\\b@example.com',
      'sip:line\u2028sep@example.com',
    ];
    const contacts = [
      'sip:user;par=u%40example.net@198.51.100.7:5060;transport=tcp',
      'sip:%E2%82%AC@[2001:db8::1]:5061;transport=tls;ob',
      'sips:\u00e9t\u00e9@example.com;lr',
      'sip:nul\u0000in\u0000contact@example.com',
      'sip:"quoted"\\\n\t@example.com',
      'sip:\u{1F4DE}@example.com;x=\u2029',
    ];
    const written = new Map<string, Binding[]>();
    for (const [i, aor] of aors.entries()) {
      const bindings = contacts.map((contact, j) => binding(aor, i * 10 + j, {
        contact,
        path: [`<sip:edge\u00fc@proxy${j}.example.com;lr>`],
        userAgent: `Phone "\u00c5" ${j}\r\n`,
        instanceId: `<urn:uuid:00000000-0000-1000-8000-00000000000${j}>`,
      }));
      t.equal(await store.put(aor, 0, bindings), true, `put ${show(aor)}`);
      written.set(aor, bindings);
    }
    for (const [aor, bindings] of written) {
      const got = await store.get(aor, T0);
      t.strictSame(got.bindings, bindings, `get ${show(aor)}`);
      t.strictSame(got.bindings.map((b) => Buffer.from(b.contact)), contacts.map((c) => Buffer.from(c)),
        `contact bytes of ${show(aor)}`);
    }
    t.strictSame(await store.list(T0), [...aors].sort(), 'list returns the AORs exactly');
    t.strictSame(await store.get('sip:%00USER@example.com', T0), { version: 0, bindings: [] },
      'AORs are compared byte-exact, not case-folded or unescaped (canonicalising is the registrar\'s job)');
  });

  t.test('many contacts on one AOR keep their order and every field', async (t) => {
    const store = await fresh(t);
    const aor = 'sip:switchboard@example.com';
    const transports = ['udp', 'tcp', 'ws', 'wss', 'tls'];
    const bindings = Array.from({ length: 30 }, (_, i) => {
      const b = binding(aor, i, {
        // Deliberately not sorted by q or expiry: the store must not reorder.
        q: [0.1, 1, 0, 0.5, 0.001][i % 5] ?? 1,
        expiresAt: T0 + HOUR - i * 1000,
        registeredAt: T0 - i * 60_000,
        cseq: 0xffff_ffff - i,
        path: Array.from({ length: i % 3 }, (_, k) => `<sip:p${k}.example.com;lr>`),
        flow: {
          transport: transports[i % transports.length] ?? 'udp',
          address: i % 2 === 0 ? `203.0.113.${i}` : `2001:db8::${i.toString(16)}`,
          port: 1024 + i,
          ...(i % 4 === 0 ? { connectionId: `conn-${i}`, node: `node-${i % 3}` } : {}),
        },
      });
      if (i % 3 === 0) b.instanceId = `<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6b${String(i).padStart(2, '0')}>`;
      if (i % 2 === 1) b.userAgent = `Softphone/${i}.0`;
      return b;
    });
    t.equal(await store.put(aor, 0, bindings), true);
    t.strictSame((await store.get(aor, T0)).bindings, bindings);
    t.strictSame((await store.get(aor, T0 + HOUR - 15_000)).bindings, bindings.slice(0, 15),
      'expiry filtering keeps the order of the survivors');
  });

  t.test('stored data is a copy: editing the caller\'s objects changes nothing', async (t) => {
    const store = await fresh(t);
    const aor = 'sip:copy@example.com';
    const original = binding(aor, 1, { path: ['<sip:a.example.com;lr>'] });
    const snapshot = structuredClone(original);
    t.equal(await store.put(aor, 0, [original]), true);
    original.contact = 'sip:changed@example.com';
    original.path.push('<sip:b.example.com;lr>');
    original.flow.port = 1;
    const got = await store.get(aor, T0);
    t.strictSame(got.bindings, [snapshot], 'edits after put are not stored');
    const first = got.bindings[0];
    // Results are read-only: a store may hand out frozen objects (the embedded
    // one does, to avoid a deep copy per call) — then an edit throws; either
    // way it must not reach the stored record.
    try {
      if (first !== undefined) first.contact = 'sip:changed-again@example.com';
    } catch (e) {
      t.type(e, TypeError, 'frozen result');
    }
    t.strictSame((await store.get(aor, T0)).bindings, [snapshot], 'edits to a get result are not stored');
  });

  t.test('a malformed binding is rejected and changes nothing', async (t) => {
    const store = await fresh(t);
    const aor = 'sip:grace@example.com';
    const good = binding(aor, 1);
    await t.rejects(store.put(aor, 0, [good, binding(aor, 2, { q: 1.5 })]), { code: 'DP_STORE_BAD_BINDING' }, 'q above 1');
    await t.rejects(store.put(aor, 0, [binding(aor, 3, { expiresAt: Number.NaN })]), { code: 'DP_STORE_BAD_BINDING' }, 'NaN expiry');
    await t.rejects(store.put(aor, 0, [binding(aor, 4, { cseq: -1 })]), { code: 'DP_STORE_BAD_BINDING' }, 'negative CSeq');
    t.strictSame(await store.get(aor, T0), { version: 0, bindings: [] });
    t.strictSame(await store.list(T0), []);
  });
}
