import t, { type Test } from 'tap';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedCdrStore, type EmbeddedCdrFileOptions } from '../../../src/store/embedded/cdr-store.js';
import { T0, allPages, cdr, cdrContract } from './cdr-contract.js';

const DAY = 86_400_000;

function tempFile(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'dp-cdrs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'config.cdrs.jsonl');
}

function lines(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
}

t.test('contract, in memory', async (t) => {
  cdrContract(t, async ({ retentionDays, now }) => {
    const store = new EmbeddedCdrStore({ retentionDays, now });
    return { store, cleanup: () => store.close() };
  });
});

t.test('contract, in a file', async (t) => {
  cdrContract(t, async ({ retentionDays, now }) => {
    const dir = mkdtempSync(join(tmpdir(), 'dp-cdrs-'));
    const store = await EmbeddedCdrStore.open({ retentionDays, now, file: join(dir, 'c.jsonl'), flushMs: 5 });
    return { store, cleanup: async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); } };
  });
});

t.test('reopen: records, order, positions and cursors read back equal; the file is private', async (t) => {
  const file = tempFile(t);
  const opts: EmbeddedCdrFileOptions = { file, now: () => T0 };
  const first = await EmbeddedCdrStore.open(opts);
  const recs = [cdr('acme', T0 - 5000), cdr('acme', T0 - 4000, { caller: '+86 139 1234 0001' }), cdr('其他', T0 - 3000), cdr('acme', T0 - 4500)];
  for (const r of recs) await first.append(r);
  const before = await allPages(first, { tenant: 'acme', limit: 2 });
  const page1 = await first.query({ tenant: 'acme', limit: 1 });
  await first.close();
  t.equal(statSync(file).mode & 0o777, 0o600, 'mode 0600: CDRs carry callers\' numbers');
  t.equal(lines(file).length, 4, 'written at close');

  const again = await EmbeddedCdrStore.open(opts);
  t.teardown(() => again.close());
  const after = await allPages(again, { tenant: 'acme', limit: 2 });
  t.strictSame(after.items, before.items, 'same records, same order (the late one stays after the later one)');
  t.strictSame(after.pages, before.pages, 'same pages');
  t.strictSame((await again.query({ tenant: 'acme', limit: 5, cursor: page1.nextCursor as string })).items, before.items.slice(1), 'a cursor from before the restart still means the same place');
  t.strictSame((await again.query({ tenant: '其他', limit: 5 })).items, [recs[2]]);
  await again.append(cdr('acme', T0 - 4200));
  t.equal((await again.query({ tenant: 'acme', limit: 1 })).items[0]?.endedAt, T0 - 4200, 'a new record goes after the replayed ones');
});

t.test('appends are batched: written after flushMs, not at each append', async (t) => {
  const file = tempFile(t);
  const store = await EmbeddedCdrStore.open({ file, now: () => T0, flushMs: 30 });
  t.teardown(() => store.close());
  await store.append(cdr('acme', T0 - 10));
  await store.append(cdr('acme', T0 - 5));
  t.equal(readFileSync(file, 'utf8'), '', 'nothing on disk right after the appends');
  t.equal((await store.query({ tenant: 'acme', limit: 5 })).items.length, 2, 'but queryable at once');
  await new Promise((r) => setTimeout(r, 150));
  t.equal(lines(file).length, 2, 'both written by one flush');
});

t.test('a torn last line is ignored with one warning, cut off, and appends go on', async (t) => {
  const file = tempFile(t);
  const first = await EmbeddedCdrStore.open({ file, now: () => T0 });
  await first.append(cdr('acme', T0 - 3000));
  await first.append(cdr('acme', T0 - 2000));
  await first.close();
  const good = readFileSync(file, 'utf8');
  appendFileSync(file, '{"pos":"1699999999000-0","cdr":{"callId":"torn","ten');

  const warnings: string[] = [];
  const second = await EmbeddedCdrStore.open({ file, now: () => T0, onWarning: (m) => warnings.push(m) });
  t.equal(warnings.length, 1, 'one warning');
  t.match(warnings[0], /torn last line \(line 3/);
  t.equal(readFileSync(file, 'utf8'), good, 'the torn bytes are cut off');
  t.equal((await second.query({ tenant: 'acme', limit: 10 })).items.length, 2);
  await second.append(cdr('acme', T0 - 1000));
  await second.close();

  const third = await EmbeddedCdrStore.open({ file, now: () => T0, onWarning: (m) => warnings.push(m) });
  t.teardown(() => third.close());
  t.equal(warnings.length, 1, 'no warning: the next append started on its own line');
  t.strictSame((await third.query({ tenant: 'acme', limit: 10 })).items.map((r) => r.endedAt), [T0 - 1000, T0 - 2000, T0 - 3000]);

  // A complete but unparsable last line (zeros after a power cut) is torn too.
  writeFileSync(file, `${good}\0\0\0\0\n`);
  const fourth = await EmbeddedCdrStore.open({ file, now: () => T0, onWarning: (m) => warnings.push(m) });
  t.teardown(() => fourth.close());
  t.equal(warnings.length, 2);
  t.equal((await fourth.query({ tenant: 'acme', limit: 10 })).items.length, 2);
});

t.test('a bad line with good lines after it is damage: start-up stops naming the file and the line', async (t) => {
  const file = tempFile(t);
  const first = await EmbeddedCdrStore.open({ file, now: () => T0 });
  for (let i = 0; i < 3; i++) await first.append(cdr('acme', T0 - 1000 + i));
  await first.close();
  const [l1, l2, l3] = lines(file);
  writeFileSync(file, `${l1}\n${(l2 as string).slice(0, 20)}\n${l3}\n`);
  await t.rejects(EmbeddedCdrStore.open({ file, now: () => T0 }), { code: 'DP_STORE_BAD_FILE', message: new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is damaged at line 2`) });
  writeFileSync(file, `${l1}\n{"pos":"nope","cdr":{"tenant":"acme"}}\n${l3}\n`);
  await t.rejects(EmbeddedCdrStore.open({ file, now: () => T0 }), { code: 'DP_STORE_BAD_FILE', message: /line 2 \(not a CDR cursor/ });
});

t.test('retention at reopen: old records are not loaded; a file grown well past the live records is compacted', async (t) => {
  const file = tempFile(t);
  const clock = { now: T0 };
  const first = await EmbeddedCdrStore.open({ file, now: () => clock.now, retentionDays: 30 });
  for (let i = 0; i < 30; i++) await first.append(cdr('acme', T0 - 40 * DAY + i * DAY));
  await first.close();
  t.equal(lines(file).length, 30);

  const roomy = await EmbeddedCdrStore.open({ file, now: () => clock.now, retentionDays: 30 });
  const kept = await allPages(roomy, { tenant: 'acme', limit: 100 });
  t.equal(kept.items.length, 20, 'the 10 records older than 30 days are dropped');
  t.ok(kept.items.every((r) => (r.endedAt as number) >= T0 - 30 * DAY));
  await roomy.close();
  t.equal(lines(file).length, 30, 'below compactMinLines (default 10,000) the file is left as it is');

  clock.now = T0 + 6 * DAY;
  const compacting = await EmbeddedCdrStore.open({ file, now: () => clock.now, retentionDays: 30, compactMinLines: 10 });
  t.equal((await allPages(compacting, { tenant: 'acme', limit: 100 })).items.length, 14);
  t.equal(lines(file).length, 14, 'rewritten with only the live records (30 lines > 2 × 14)');
  await compacting.append(cdr('acme', T0 + 6 * DAY));
  clock.now = T0 + 20 * DAY;
  await compacting.trim();
  t.equal(lines(file).length, 1, 'trim compacts too (15 lines, counting the buffered one, 1 live)');
  await compacting.close();
  t.equal(lines(file).length, 1, 'the buffered record was in the rewrite, not written twice');

  const last = await EmbeddedCdrStore.open({ file, now: () => clock.now, retentionDays: 30 });
  t.teardown(() => last.close());
  t.strictSame((await allPages(last, { tenant: 'acme', limit: 100 })).items.map((r) => r.endedAt), [T0 + 6 * DAY], 'and reads back the same');
});

t.test('a file that cannot be opened stops start-up; the options are checked', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dp-cdrs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await t.rejects(EmbeddedCdrStore.open({ file: join(dir, 'missing-dir', 'c.jsonl') }), { code: 'DP_STORE_BAD_FILE' });
  await t.rejects(EmbeddedCdrStore.open({ file: dir }), { code: 'DP_STORE_BAD_FILE' }, 'a directory');
  await t.rejects(EmbeddedCdrStore.open({ file: join(dir, 'c.jsonl'), flushMs: -1 }), RangeError);
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
