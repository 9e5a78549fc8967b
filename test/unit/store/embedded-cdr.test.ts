import t from 'tap';
import { EmbeddedCdrStore } from '../../../src/store/embedded/cdr-store.js';
import { T0, allPages, cdr, cdrContract } from './cdr-contract.js';

t.test('contract', async (t) => {
  cdrContract(t, async ({ retentionDays, now }) => {
    const store = new EmbeddedCdrStore({ retentionDays, now });
    return { store, cleanup: () => store.close() };
  });
});

t.test('a tenant keeps at most maxPerTenant records, the newest', async (t) => {
  const store = new EmbeddedCdrStore({ maxPerTenant: 5, now: () => T0 });
  const recs = Array.from({ length: 12 }, (_, i) => cdr('acme', T0 - 1000 + i));
  for (const r of recs) await store.append(r);
  await store.append(cdr('other', T0));
  const { items } = await allPages(store, { tenant: 'acme', limit: 3 });
  t.strictSame(items.map((r) => r.callId), recs.slice(7).map((r) => r.callId).reverse());
  t.equal((await store.query({ tenant: 'other', limit: 10 })).items.length, 1, 'another tenant has its own bound');
});

t.test('dropping many old records keeps order and positions (compaction of the dead prefix)', async (t) => {
  const store = new EmbeddedCdrStore({ maxPerTenant: 100, now: () => T0 });
  for (let i = 0; i < 5000; i++) await store.append(cdr('acme', T0 - 10_000 + i));
  const { items } = await allPages(store, { tenant: 'acme', limit: 30 });
  t.equal(items.length, 100);
  t.strictSame(items.map((r) => r.endedAt), Array.from({ length: 100 }, (_, i) => T0 - 10_000 + 4999 - i));
});

t.test('a closed store refuses with DP_STORE_CLOSED; bad options throw at construction', async (t) => {
  const store = new EmbeddedCdrStore();
  await store.close();
  await t.rejects(store.append(cdr('acme', T0)), { code: 'DP_STORE_CLOSED' });
  await t.rejects(store.query({ tenant: 'acme', limit: 1 }), { code: 'DP_STORE_CLOSED' });
  t.throws(() => new EmbeddedCdrStore({ retentionDays: 0 }), RangeError);
  t.throws(() => new EmbeddedCdrStore({ maxPerTenant: 0 }), RangeError);
});
