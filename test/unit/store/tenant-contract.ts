/**
 * Behaviour every TenantStore must have, run against each store (the
 * embedded one in test/unit/store, the Redis one in test/integration).
 *
 * Nothing sleeps for a fixed time: announcements are awaited by polling the
 * recorded changes against a deadline.
 */
import { readFileSync } from 'node:fs';
import type { Test } from 'tap';
import type { GlobalDocument, TenantDocument } from '../../../src/routing/model.js';
import { TenantStoreConflict, type ConfigChange, type TenantStore } from '../../../src/store/tenant-store.js';

export interface TenantStoreUnderTest {
  store: TenantStore;
  /**
   * Resolves once listeners registered with `watch` so far hear every later
   * write (Redis: the SUBSCRIBE was acknowledged). Absent: at once.
   */
  watchReady?: () => Promise<void>;
  cleanup: () => Promise<void>;
}

const EXAMPLES = ['hotline-400', 'main-number-ivr', 'short-number-plan'];

export function exampleTenant(name: string): TenantDocument {
  return JSON.parse(readFileSync(new URL(`../../../routing-rules/examples/${name}.json`, import.meta.url), 'utf8')) as TenantDocument;
}

export function exampleGlobal(): GlobalDocument {
  return JSON.parse(readFileSync(new URL('../../../routing-rules/examples/global.json', import.meta.url), 'utf8')) as GlobalDocument;
}

/** A small valid tenant; `name` tells versions apart. */
export function smallTenant(id: string, name = id): TenantDocument {
  return { id, name, extensions: [{ number: '1001', name: '前台', sip: { ha1Md5: '0'.repeat(32), ha1Sha256: '0'.repeat(64) } }] };
}

/** Records a store's announcements; `until` polls them against a deadline. */
export function recordChanges(store: TenantStore): {
  changes: ConfigChange[];
  stop: () => void;
  until: (condition: (changes: ConfigChange[]) => boolean, what: string, timeoutMs?: number) => Promise<void>;
} {
  const changes: ConfigChange[] = [];
  const stop = store.watch((change) => { changes.push(change); });
  return {
    changes,
    stop,
    until: (condition, what, timeoutMs = 5_000) => until(() => condition(changes), what, timeoutMs),
  };
}

/** Polls `condition` every 5 ms; rejects after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export function tenantContract(t: Test, make: () => Promise<TenantStoreUnderTest>): void {
  async function fresh(t: Test): Promise<TenantStoreUnderTest> {
    const under = await make();
    t.teardown(under.cleanup);
    return under;
  }

  t.test('a tenant never written is absent and the global document starts at version 0', async (t) => {
    const { store } = await fresh(t);
    t.equal(await store.getTenant('nobody'), undefined);
    t.strictSame(await store.tenantVersions(), new Map());
    t.strictSame(await store.getGlobal(), { version: 0, doc: {} });
    t.equal(await store.globalVersion(), 0);
  });

  t.test('put then get returns each example document exactly, with a positive version', async (t) => {
    const { store } = await fresh(t);
    const expected = new Map<string, number>();
    for (const name of EXAMPLES) {
      const doc = exampleTenant(name);
      const version = await store.putTenant(doc);
      t.ok(Number.isSafeInteger(version) && version > 0, `${name}: version ${version} is a positive integer`);
      t.strictSame(await store.getTenant(doc.id), { version, doc }, `${name}: round trip`);
      expected.set(doc.id, version);
    }
    t.strictSame(await store.tenantVersions(), expected, 'tenantVersions lists each tenant with its version');
  });

  t.test('every successful write raises the version', async (t) => {
    const { store } = await fresh(t);
    const v1 = await store.putTenant(smallTenant('acme', 'one'), { ifVersion: 0 });
    const v2 = await store.putTenant(smallTenant('acme', 'two'), { ifVersion: v1 });
    const v3 = await store.putTenant(smallTenant('acme', 'three'));
    t.ok(v1 < v2 && v2 < v3, `versions grow: ${v1} < ${v2} < ${v3}`);
    t.strictSame(await store.getTenant('acme'), { version: v3, doc: smallTenant('acme', 'three') });
    t.strictSame(await store.tenantVersions(), new Map([['acme', v3]]));
  });

  t.test('a conditional write with another version than the stored one is a conflict and writes nothing', async (t) => {
    const { store } = await fresh(t);
    const stale = await store.putTenant(smallTenant('acme', 'first'));
    const current = await store.putTenant(smallTenant('acme', 'second'), { ifVersion: stale });
    const stored = { version: current, doc: smallTenant('acme', 'second') };

    const cases: [string, number][] = [
      ['ifVersion 0 (create) on an existing tenant', 0],
      ['a stale version', stale],
      ['a future version', current + 1000],
      ['a version that is not an integer', 1.5],
      ['a negative version', -1],
    ];
    for (const [name, ifVersion] of cases) {
      const err: unknown = await store.putTenant(smallTenant('acme', 'lost'), { ifVersion }).then(() => undefined, (e: unknown) => e);
      t.type(err, TenantStoreConflict, `${name}: TenantStoreConflict`);
      t.match(err, { code: 'DP_STORE_CONFLICT', expected: ifVersion, actual: current }, `${name}: names both versions`);
      t.strictSame(await store.getTenant('acme'), stored, `${name}: document unchanged`);
    }

    await t.rejects(store.putTenant(smallTenant('ghost'), { ifVersion: 7 }), { code: 'DP_STORE_CONFLICT', expected: 7, actual: 0 },
      'a non-zero version does not create a tenant');
    t.equal(await store.getTenant('ghost'), undefined);
    t.strictSame(await store.tenantVersions(), new Map([['acme', current]]));
  });

  t.test('of 20 writers racing with the same version exactly one wins', async (t) => {
    const { store } = await fresh(t);
    const base = await store.putTenant(smallTenant('race', 'base'));
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => store.putTenant(smallTenant('race', `writer ${i}`), { ifVersion: base })),
    );
    const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    t.equal(winners.length, 1, `exactly one winner (got ${winners.join(',')})`);
    t.ok(results.every((r) => r.status === 'fulfilled' || r.reason instanceof TenantStoreConflict), 'the others lose with a conflict');
    const winner = winners[0] ?? -1;
    t.strictSame((await store.getTenant('race'))?.doc, smallTenant('race', `writer ${winner}`), 'the winner\'s document is stored');

    const creators = await Promise.allSettled([
      store.putTenant(smallTenant('new', 'a'), { ifVersion: 0 }),
      store.putTenant(smallTenant('new', 'b'), { ifVersion: 0 }),
    ]);
    t.equal(creators.filter((r) => r.status === 'fulfilled').length, 1, 'two writers creating one tenant: one wins');
  });

  t.test('delete removes the tenant; old versions stay dead after it is created again', async (t) => {
    const { store } = await fresh(t);
    const v1 = await store.putTenant(smallTenant('gone', 'one'));
    const v2 = await store.putTenant(smallTenant('gone', 'two'));
    await store.putTenant(smallTenant('stays'));

    await t.rejects(store.deleteTenant('gone', { ifVersion: v1 }), { code: 'DP_STORE_CONFLICT', expected: v1, actual: v2 },
      'delete with a stale version is a conflict');
    t.equal((await store.getTenant('gone'))?.version, v2, 'and deletes nothing');

    t.equal(await store.deleteTenant('gone', { ifVersion: v2 }), true, 'delete with the current version');
    t.equal(await store.getTenant('gone'), undefined, 'the tenant is gone');
    t.strictSame([...(await store.tenantVersions()).keys()], ['stays'], 'and no longer listed');
    t.equal(await store.deleteTenant('gone'), false, 'deleting it again reports false');
    t.equal(await store.deleteTenant('gone', { ifVersion: 0 }), false, 'ifVersion 0 (must not exist) holds for a missing tenant');
    await t.rejects(store.deleteTenant('gone', { ifVersion: v2 }), { code: 'DP_STORE_CONFLICT', actual: 0 },
      'a non-zero version on a missing tenant is a conflict');

    const v3 = await store.putTenant(smallTenant('gone', 'three'), { ifVersion: 0 });
    t.ok(v3 > v2, `the recreated tenant has a newer version (${v3} > ${v2})`);
    await t.rejects(store.putTenant(smallTenant('gone', 'four'), { ifVersion: v2 }), { code: 'DP_STORE_CONFLICT' },
      'a version read before the delete loses against the new document');
    t.equal((await store.getTenant('gone'))?.doc.name, 'three');
  });

  t.test('the global document: version 0 until written, then conditional writes like tenants', async (t) => {
    const { store } = await fresh(t);
    const doc = exampleGlobal();
    await t.rejects(store.putGlobal(doc, { ifVersion: 3 }), { code: 'DP_STORE_CONFLICT', expected: 3, actual: 0 });
    t.equal(await store.globalVersion(), 0, 'a lost write leaves it unwritten');
    const v1 = await store.putGlobal(doc, { ifVersion: 0 });
    t.ok(v1 > 0);
    t.strictSame(await store.getGlobal(), { version: v1, doc });
    t.equal(await store.globalVersion(), v1);
    await t.rejects(store.putGlobal({}, { ifVersion: 0 }), { code: 'DP_STORE_CONFLICT', expected: 0, actual: v1 });
    const v2 = await store.putGlobal({ blacklist: { numbers: ['+8613800000000'] } }, { ifVersion: v1 });
    t.ok(v2 > v1);
    t.strictSame(await store.getGlobal(), { version: v2, doc: { blacklist: { numbers: ['+8613800000000'] } } });
    t.strictSame(await store.tenantVersions(), new Map(), 'the global document is not a tenant');
  });

  t.test('counters: 200 concurrent increments yield 1..200 exactly once; keys are independent', async (t) => {
    const { store } = await fresh(t);
    const key = 'rr:acme:group:sales';
    const values = await Promise.all(Array.from({ length: 200 }, () => store.incrCounter(key)));
    t.strictSame([...values].sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i + 1));
    t.equal(await store.incrCounter(key), 201, 'and go on from there');
    t.equal(await store.incrCounter('rr:acme:route:main:r1:0'), 1, 'another key of the tenant starts at 1');
    t.equal(await store.incrCounter('rr:other:group:sales'), 1, 'the same group name in another tenant starts at 1');
    t.equal(await store.incrCounter('rr:租户:group:销售'), 1, 'non-ASCII keys work');
    t.equal(await store.incrCounter('not-round-robin'), 1, 'a key of another shape works too');
    t.equal(await store.incrCounter('not-round-robin'), 2);
  });

  t.test('watch announces this store\'s own writes, in order, and nothing for a lost write', async (t) => {
    const { store, watchReady } = await fresh(t);
    const rec = recordChanges(store);
    t.teardown(rec.stop);
    await watchReady?.();

    const v1 = await store.putTenant(smallTenant('acme'));
    await rec.until((c) => c.length >= 1, 'the put announcement');
    t.strictSame(rec.changes, [{ kind: 'tenant', tenant: 'acme', version: v1 }]);

    await t.rejects(store.putTenant(smallTenant('acme'), { ifVersion: 0 }), { code: 'DP_STORE_CONFLICT' });
    await t.rejects(store.putGlobal({}, { ifVersion: 9 }), { code: 'DP_STORE_CONFLICT' });
    t.equal(await store.deleteTenant('absent'), false);
    const g1 = await store.putGlobal(exampleGlobal());
    const deleted = await store.deleteTenant('acme', { ifVersion: v1 });
    t.equal(deleted, true);
    await rec.until((c) => c.length >= 3, 'the global and delete announcements');
    const [, global, deletion] = rec.changes;
    t.strictSame(global, { kind: 'global', version: g1 }, 'the global write, right after the put: lost writes announce nothing');
    t.match(deletion, { kind: 'tenant', tenant: 'acme', deleted: true }, 'the delete');
    t.ok(deletion?.kind === 'tenant' && deletion.version > v1, 'a deletion carries a version newer than the document it removed');
    t.equal(rec.changes.length, 3, 'nothing else');
  });

  t.test('an unsubscribed listener hears nothing more; others still do', async (t) => {
    const { store, watchReady } = await fresh(t);
    const a = recordChanges(store);
    const b = recordChanges(store);
    t.teardown(b.stop);
    await watchReady?.();
    const v1 = await store.putTenant(smallTenant('acme'));
    await a.until((c) => c.length === 1, 'listener a');
    await b.until((c) => c.length === 1, 'listener b');
    a.stop();
    a.stop(); // unsubscribing twice is harmless
    const v2 = await store.putTenant(smallTenant('acme', 'again'));
    await b.until((c) => c.length === 2, 'listener b, second write');
    t.strictSame(a.changes, [{ kind: 'tenant', tenant: 'acme', version: v1 }], 'a heard only the first write');
    t.strictSame(b.changes.map((c) => c.version), [v1, v2]);
  });

  t.test('documents with Chinese and other non-ASCII text round-trip byte-exact', async (t) => {
    const { store } = await fresh(t);
    const doc: TenantDocument = {
      ...exampleTenant('short-number-plan'),
      name: '上海集团 集团短号 \u{1F4DE} «ligne»\u2028\u2029 tab\there "quote" back\\slash nul\u0000',
      extensions: [
        { number: '1001', name: '张三', sip: { ha1Md5: 'a'.repeat(32), ha1Sha256: 'b'.repeat(64) } },
        { number: '1002', name: '李四 \uD800 lone surrogate', sip: { ha1Md5: 'c'.repeat(32), ha1Sha256: 'd'.repeat(64) } },
      ],
    };
    const bytes = Buffer.from(JSON.stringify(doc));
    const version = await store.putTenant(doc);
    const got = await store.getTenant(doc.id);
    t.strictSame(got, { version, doc });
    t.ok(got !== undefined && Buffer.from(JSON.stringify(got.doc)).equals(bytes), 'same bytes once serialised');
    t.equal(got?.doc.extensions?.[1]?.name, '李四 \uD800 lone surrogate', 'even a lone surrogate inside a document survives');

    const unicodeId = '租户-一';
    await store.putTenant(smallTenant(unicodeId, '王五'));
    t.equal((await store.getTenant(unicodeId))?.doc.name, '王五', 'a non-ASCII tenant id names its own document');
    t.ok((await store.tenantVersions()).has(unicodeId));

    const global: GlobalDocument = { ...exampleGlobal(), carriers: { segments: [{ prefix: '139', carrier: '中国移动' }] } };
    const gv = await store.putGlobal(global);
    t.strictSame(await store.getGlobal(), { version: gv, doc: global });
  });

  t.test('results are copies: editing a written or a read document changes nothing stored', async (t) => {
    const { store } = await fresh(t);
    const doc = smallTenant('copy', 'original');
    const version = await store.putTenant(doc);
    doc.name = 'edited after put';
    const got = await store.getTenant('copy');
    if (got !== undefined) got.doc.name = 'edited after get';
    t.strictSame(await store.getTenant('copy'), { version, doc: smallTenant('copy', 'original') });
  });

  t.test('unusable ids, documents and counter keys are refused with a code and change nothing', async (t) => {
    const { store } = await fresh(t);
    await t.rejects(store.putTenant(smallTenant('')), { code: 'DP_STORE_BAD_TENANT_ID' }, 'empty id');
    await t.rejects(store.putTenant(smallTenant('a\uD800b')), { code: 'DP_STORE_BAD_TENANT_ID' }, 'id that UTF-8 cannot carry');
    await t.rejects(store.putTenant({ name: 'no id' } as unknown as TenantDocument), { code: 'DP_STORE_BAD_TENANT_ID' }, 'missing id');
    await t.rejects(store.getTenant(''), { code: 'DP_STORE_BAD_TENANT_ID' }, 'get with an empty id');
    await t.rejects(store.deleteTenant('\uDC00'), { code: 'DP_STORE_BAD_TENANT_ID' }, 'delete with a lone surrogate');
    await t.rejects(store.putTenant(null as unknown as TenantDocument), { code: 'DP_STORE_BAD_DOCUMENT' }, 'null document');
    await t.rejects(store.putTenant({ id: 'big', n: 1n } as unknown as TenantDocument), { code: 'DP_STORE_BAD_DOCUMENT' }, 'BigInt');
    const cyclic: Record<string, unknown> = { id: 'cycle' };
    cyclic.self = cyclic;
    await t.rejects(store.putTenant(cyclic as unknown as TenantDocument), { code: 'DP_STORE_BAD_DOCUMENT' }, 'cycle');
    await t.rejects(store.putGlobal([] as unknown as GlobalDocument), { code: 'DP_STORE_BAD_DOCUMENT' }, 'array as global document');
    await t.rejects(store.incrCounter(''), { code: 'DP_STORE_BAD_COUNTER_KEY' }, 'empty counter key');
    t.strictSame(await store.tenantVersions(), new Map(), 'nothing was written');
    t.equal(await store.globalVersion(), 0);
  });
}
