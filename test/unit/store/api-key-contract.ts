/**
 * Behaviour every ApiKeyStore must have, run against the embedded store
 * (test/unit/store/embedded-api-key.test.ts) and Redis
 * (test/integration/admin-redis.test.ts).
 */
import type { Test } from 'tap';
import { generateApiKey, type ApiKeyRecord, type ApiKeyStore } from '../../../src/store/api-key-store.js';

export function record(tenant: string, overrides: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  const k = generateApiKey();
  return { id: k.id, tenant, readOnly: false, secretHash: k.secretHash, createdAt: 1_700_000_000_000, ...overrides };
}

export function apiKeyContract(t: Test, open: () => Promise<{ store: ApiKeyStore; cleanup: () => Promise<void> }>): void {
  t.test('create, get, list, delete', async (t) => {
    const { store, cleanup } = await open();
    t.teardown(cleanup);
    const a = record('t-a', { name: 'CRM', createdAt: 1 });
    const b = record('t-a', { readOnly: true, createdAt: 2 });
    const c = record('t-b');
    for (const r of [a, b, c]) t.equal(await store.create(r), true);
    t.same(await store.get(a.id), a, 'a record comes back as written');
    t.equal(await store.get('0123456789abcdef'), undefined);
    t.same((await store.list('t-a')).map((r) => r.id), [a.id, b.id], 'oldest first, only the tenant\'s keys');
    t.same((await store.list('t-b')).map((r) => r.id), [c.id]);
    t.same(await store.list('nobody'), []);
    t.equal(await store.delete(a.id), true);
    t.equal(await store.delete(a.id), false, 'deleting twice says there was nothing');
    t.equal(await store.get(a.id), undefined);
    t.same((await store.list('t-a')).map((r) => r.id), [b.id]);
  });

  t.test('an id is never taken twice', async (t) => {
    const { store, cleanup } = await open();
    t.teardown(cleanup);
    const a = record('t-a');
    t.equal(await store.create(a), true);
    t.equal(await store.create({ ...a, tenant: 't-b', readOnly: true }), false);
    t.same(await store.get(a.id), a, 'the first record stays');
    t.same(await store.list('t-b'), [], 'the refused record is not listed for the other tenant');
  });

  t.test('deleteTenant revokes every key of the tenant and no other', async (t) => {
    const { store, cleanup } = await open();
    t.teardown(cleanup);
    const keys = [record('t-a'), record('t-a'), record('t-b')];
    for (const r of keys) await store.create(r);
    t.equal(await store.deleteTenant('t-a'), 2);
    t.same(await store.list('t-a'), []);
    t.equal(await store.get(keys[0]!.id), undefined);
    t.ok(await store.get(keys[2]!.id), 'the other tenant keeps its key');
    t.equal(await store.deleteTenant('t-a'), 0);
  });
}
