/**
 * Behaviour every CdrStore must have, run against each store (embedded in
 * test/unit/store, Redis in test/integration). Time is injected: `now`
 * moves only when a test says so.
 */
import type { Test } from 'tap';
import { MAX_SCAN_PER_QUERY, type CdrQuery, type CdrRecord, type CdrStore } from '../../../src/store/cdr-store.js';

export interface CdrStoreUnderTest {
  store: CdrStore;
  cleanup: () => Promise<void>;
}

export interface CdrStoreSetup {
  retentionDays: number;
  now: () => number;
}

export const T0 = 1_700_000_000_000;
const DAY = 86_400_000;

let serial = 0;

/** A finished call; `endedAt` is what positions it. */
export function cdr(tenant: string, endedAt: number, extra: Partial<CdrRecord> = {}): CdrRecord {
  serial++;
  return {
    callId: `call-${serial}@test`, tenant, origin: { kind: 'trunk', trunk: 'ct' },
    called: '4008123456', caller: '13800138000', callerRegion: { province: '江苏省', city: '常州市' },
    route: 'main', rule: 'r1', startedAt: endedAt - 30_000, ringingAt: endedAt - 29_000, answeredAt: endedAt - 20_000, endedAt,
    attempts: [{ target: '1001', kind: 'extension', startedAt: endedAt - 29_500, endedAt: endedAt - 20_000, outcome: 'answered', status: 200 }],
    finalStatus: 200, disposition: 'answered', endedBy: 'bye',
    ...extra,
  };
}

/** Every page of a query, following cursors (at most 100 pages). */
export async function allPages(store: CdrStore, q: Omit<CdrQuery, 'cursor'>): Promise<{ pages: CdrRecord[][]; items: CdrRecord[] }> {
  const pages: CdrRecord[][] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 100; i++) {
    const page = await store.query(cursor === undefined ? q : { ...q, cursor });
    pages.push(page.items);
    cursor = page.nextCursor;
    if (cursor === undefined) break;
  }
  return { pages, items: pages.flat() };
}

export function cdrContract(t: Test, make: (setup: CdrStoreSetup) => Promise<CdrStoreUnderTest>): void {
  async function fresh(t: Test, retentionDays = 30): Promise<{ store: CdrStore; clock: { now: number } }> {
    const clock = { now: T0 };
    const under = await make({ retentionDays, now: () => clock.now });
    t.teardown(under.cleanup);
    return { store: under.store, clock };
  }

  t.test('a tenant without records has an empty last page', async (t) => {
    const { store } = await fresh(t);
    t.strictSame(await store.query({ tenant: 'nobody', limit: 10 }), { items: [] });
  });

  t.test('records come back exactly, newest first, Chinese text intact; tenants are separate', async (t) => {
    const { store } = await fresh(t);
    const a1 = cdr('acme', T0 - 3000, { callerRegion: { province: '浙江省', city: '杭州市' }, route: '总机 "主线", 分机' });
    const a2 = cdr('acme', T0 - 2000, { caller: undefined, disposition: 'no-answer', answeredAt: undefined });
    delete a2.caller;
    delete a2.answeredAt;
    const b1 = cdr('beta', T0 - 1000);
    for (const r of [a1, b1, a2]) await store.append(r);
    t.strictSame(await store.query({ tenant: 'acme', limit: 10 }), { items: [a2, a1] });
    t.strictSame(await store.query({ tenant: 'beta', limit: 10 }), { items: [b1] });
  });

  t.test('the time range is [from, to) on the end time', async (t) => {
    const { store } = await fresh(t);
    const recs = [0, 1, 2, 3, 4].map((i) => cdr('acme', T0 - 10_000 + i * 1000));
    for (const r of recs) await store.append(r);
    const ids = async (q: Partial<CdrQuery>): Promise<string[]> => (await allPages(store, { tenant: 'acme', limit: 100, ...q })).items.map((r) => r.callId);
    const cases: Array<[string, Partial<CdrQuery>, CdrRecord[]]> = [
      ['no bounds', {}, recs],
      ['from is inclusive', { from: T0 - 8000 }, recs.slice(2)],
      ['to is exclusive', { to: T0 - 8000 }, recs.slice(0, 2)],
      ['both', { from: T0 - 9000, to: T0 - 7000 }, recs.slice(1, 3)],
      ['from after to', { from: T0, to: T0 - 9000 }, []],
      ['a range after every record', { from: T0 }, []],
    ];
    for (const [name, q, expected] of cases) t.strictSame(await ids(q), expected.map((r) => r.callId).reverse(), name);
  });

  t.test('number matches the called or the calling number in any usual form; disposition filters', async (t) => {
    const { store } = await fresh(t);
    const r1 = cdr('acme', T0 - 4000, { called: '4008123456', caller: '+8613800138000' });
    const r2 = cdr('acme', T0 - 3000, { called: '13800138000', caller: '1001', disposition: 'busy' });
    const r3 = cdr('acme', T0 - 2000, { called: '4008123457', caller: '13912345678', disposition: 'busy' });
    for (const r of [r1, r2, r3]) await store.append(r);
    const ids = async (q: Partial<CdrQuery>): Promise<string[]> => (await allPages(store, { tenant: 'acme', limit: 100, ...q })).items.map((r) => r.callId);
    t.strictSame(await ids({ number: '13800138000' }), [r2.callId, r1.callId], 'national form finds +86 caller and called');
    t.strictSame(await ids({ number: '0086 138-0013-8000' }), [r2.callId, r1.callId], '0086 and separators');
    t.strictSame(await ids({ number: '1001' }), [r2.callId], 'an extension');
    t.strictSame(await ids({ number: '4008123456' }), [r1.callId]);
    t.strictSame(await ids({ number: '138' }), [], 'no partial matches');
    t.strictSame(await ids({ disposition: 'busy' }), [r3.callId, r2.callId]);
    t.strictSame(await ids({ disposition: 'busy', number: '+8613800138000' }), [r2.callId], 'filters combine');
  });

  t.test('pages follow cursors without gaps or repeats, even with appends between pages', async (t) => {
    const { store, clock } = await fresh(t);
    const recs = Array.from({ length: 25 }, (_, i) => cdr('acme', T0 - 100_000 + i * 1000));
    await Promise.all(recs.map((r) => store.append(r)));
    const p1 = await store.query({ tenant: 'acme', limit: 10 });
    t.equal(p1.items.length, 10);
    t.type(p1.nextCursor, 'string');
    // Concurrent appends land at the newest end: they never show up behind a cursor.
    clock.now += 10_000;
    await Promise.all([store.append(cdr('acme', T0 + 1)), store.append(cdr('acme', T0 + 2))]);
    const p2 = await store.query({ tenant: 'acme', limit: 10, cursor: p1.nextCursor ?? '' });
    const p3 = await store.query({ tenant: 'acme', limit: 10, cursor: p2.nextCursor ?? '' });
    t.equal(p3.items.length, 5);
    t.equal(p3.nextCursor, undefined, 'the last page has no cursor');
    t.strictSame([...p1.items, ...p2.items, ...p3.items].map((r) => r.callId), recs.map((r) => r.callId).reverse());
    const again = await allPages(store, { tenant: 'acme', limit: 7 });
    t.equal(again.items.length, 27, 'a new walk sees the new records too');
    t.equal(new Set(again.items.map((r) => r.callId)).size, 27, 'no repeats');
    const exact = await allPages(store, { tenant: 'acme', limit: 27 });
    t.equal(exact.pages.length, 1, 'a page that takes the last record needs no further page');
  });

  t.test('a record arriving after a later one is kept, ahead of it', async (t) => {
    const { store } = await fresh(t);
    const later = cdr('acme', T0 - 1000);
    const late = cdr('acme', T0 - 5000);
    const same = cdr('acme', T0 - 1000);
    for (const r of [later, late, same]) await store.append(r);
    const { items } = await store.query({ tenant: 'acme', limit: 10 });
    t.strictSame(items.map((r) => r.callId), [same.callId, late.callId, later.callId], 'positions only grow');
    t.equal(items[1]?.endedAt, T0 - 5000, 'its own end time is unchanged');
  });

  t.test('records older than the retention are not returned, and trim drops them', async (t) => {
    const { store, clock } = await fresh(t, 2);
    const old = cdr('acme', T0 - 3 * DAY);
    const mid = cdr('acme', T0 - DAY);
    const recent = cdr('acme', T0 - 1000);
    for (const r of [old, mid, recent]) await store.append(r);
    t.strictSame((await store.query({ tenant: 'acme', limit: 10 })).items.map((r) => r.callId), [recent.callId, mid.callId]);
    t.strictSame((await store.query({ tenant: 'acme', limit: 10, from: 0 })).items.map((r) => r.callId), [recent.callId, mid.callId], 'even when asked for');
    clock.now += DAY + 1;
    await store.trim();
    t.strictSame((await store.query({ tenant: 'acme', limit: 10 })).items.map((r) => r.callId), [recent.callId]);
    clock.now += 2 * DAY;
    await store.trim();
    t.strictSame(await store.query({ tenant: 'acme', limit: 10 }), { items: [] });
    await store.append(recent);
    t.equal((await store.query({ tenant: 'acme', limit: 10 })).items.length, 0, 'an old record appended late is past retention too');
  });

  t.test('a selective filter examines a bounded number of records per page and goes on by cursor', async (t) => {
    const { store } = await fresh(t);
    const wanted = cdr('acme', T0 - 100_000, { called: '4009999999' });
    await store.append(wanted);
    const noise = Array.from({ length: MAX_SCAN_PER_QUERY + 10 }, (_, i) => cdr('acme', T0 - 90_000 + i));
    for (let i = 0; i < noise.length; i += 500) await Promise.all(noise.slice(i, i + 500).map((r) => store.append(r)));
    const first = await store.query({ tenant: 'acme', number: '4009999999', limit: 10 });
    t.strictSame(first.items, [], 'nothing in the first scan budget');
    t.type(first.nextCursor, 'string', 'but a cursor to go on');
    const second = await store.query({ tenant: 'acme', number: '4009999999', limit: 10, cursor: first.nextCursor ?? '' });
    t.strictSame(second, { items: [wanted] });
  });

  t.test('results are copies', async (t) => {
    const { store } = await fresh(t);
    const r = cdr('acme', T0 - 1000);
    const expected = structuredClone(r);
    await store.append(r);
    r.called = 'edited after append';
    const [got] = (await store.query({ tenant: 'acme', limit: 1 })).items;
    if (got) got.called = 'edited after query';
    t.strictSame((await store.query({ tenant: 'acme', limit: 1 })).items, [expected]);
  });

  t.test('bad queries and records are refused with a code and change nothing', async (t) => {
    const { store } = await fresh(t);
    await store.append(cdr('acme', T0 - 1000));
    const bad: Array<[string, unknown, string]> = [
      ['limit 0', { tenant: 'acme', limit: 0 }, 'DP_STORE_BAD_QUERY'],
      ['limit above the maximum', { tenant: 'acme', limit: 1001 }, 'DP_STORE_BAD_QUERY'],
      ['fractional limit', { tenant: 'acme', limit: 1.5 }, 'DP_STORE_BAD_QUERY'],
      ['missing limit', { tenant: 'acme' }, 'DP_STORE_BAD_QUERY'],
      ['negative from', { tenant: 'acme', limit: 1, from: -1 }, 'DP_STORE_BAD_QUERY'],
      ['to as a string', { tenant: 'acme', limit: 1, to: '2024-01-01' }, 'DP_STORE_BAD_QUERY'],
      ['unknown disposition', { tenant: 'acme', limit: 1, disposition: 'lost' }, 'DP_STORE_BAD_QUERY'],
      ['number not a string', { tenant: 'acme', limit: 1, number: 138 }, 'DP_STORE_BAD_QUERY'],
      ['empty number', { tenant: 'acme', limit: 1, number: ' - ' }, 'DP_STORE_BAD_QUERY'],
      ['garbage cursor', { tenant: 'acme', limit: 1, cursor: 'abc' }, 'DP_STORE_BAD_CURSOR'],
      ['cursor with Redis range syntax', { tenant: 'acme', limit: 1, cursor: '(0-0' }, 'DP_STORE_BAD_CURSOR'],
      ['empty tenant', { tenant: '', limit: 1 }, 'DP_STORE_BAD_TENANT_ID'],
      ['not an object', null, 'DP_STORE_BAD_QUERY'],
    ];
    for (const [name, q, code] of bad) await t.rejects(store.query(q as CdrQuery), { code }, name);
    const noEnd = cdr('acme', T0);
    delete noEnd.endedAt;
    await t.rejects(store.append(noEnd), { code: 'DP_STORE_BAD_RECORD' }, 'no end time');
    await t.rejects(store.append({ ...cdr('acme', T0), endedAt: Number.NaN }), { code: 'DP_STORE_BAD_RECORD' }, 'NaN end time');
    await t.rejects(store.append(cdr('', T0)), { code: 'DP_STORE_BAD_TENANT_ID' }, 'no tenant');
    await t.rejects(store.append({ ...cdr('acme', T0), route: 'x'.repeat(70_000) }), { code: 'DP_STORE_BAD_RECORD' }, 'too large');
    await t.rejects(store.append(null as unknown as CdrRecord), { code: 'DP_STORE_BAD_RECORD' }, 'null');
    t.equal((await store.query({ tenant: 'acme', limit: 10 })).items.length, 1, 'only the good record is stored');
  });
}
