/**
 * RedisCdrStore against a real Redis (REDIS_URL, default localhost): the
 * shared contract, then the stream layout. Keys live under a per-run prefix
 * and are deleted at the end.
 */
import t from 'tap';
import { RedisCdrStore, cdrKey } from '../../src/store/redis/cdr-store.js';
import { T0, cdr, cdrContract } from '../unit/store/cdr-contract.js';
import { deleteKeysWithPrefix, redisForFile } from '../helpers/redis-prefix.js';

const { redis, base } = await redisForFile(t, 'cdr');

let n = 0;
function make(options: Partial<ConstructorParameters<typeof RedisCdrStore>[0]> = {}): { store: RedisCdrStore; prefix: string; cleanup: () => Promise<void> } {
  n++;
  const prefix = `${base}${n}:`;
  const store = new RedisCdrStore({ redis, prefix, ...options });
  return { store, prefix, cleanup: async () => { await store.close(); await deleteKeysWithPrefix(redis, prefix); } };
}

t.test('contract', async (t) => {
  cdrContract(t, async ({ retentionDays, now }) => make({ retentionDays, now }));
});

t.test('layout: one stream per tenant under its hash tag, ids from the end time, expiring after the retention', async (t) => {
  const { store, prefix, cleanup } = make({ retentionDays: 1, now: () => T0 });
  t.teardown(cleanup);
  t.equal(cdrKey(prefix, '租户'), `${prefix}cdr:{租户}`);
  const r = cdr('租户', T0 - 5000);
  await store.append(r);
  await store.append(cdr('租户', T0 - 5000));
  const entries = await redis.xrange(cdrKey(prefix, '租户'), '-', '+');
  t.strictSame(entries.map(([id]) => id), [`${T0 - 5000}-0`, `${T0 - 5000}-1`]);
  t.strictSame(entries[0]?.[1], ['r', JSON.stringify(r)], 'one field: the record as JSON');
  const ttl = await redis.pttl(cdrKey(prefix, '租户'));
  t.ok(ttl > 86_400_000 - 60_000 && ttl <= 86_400_000, `expires one retention period after the last append (${ttl} ms)`);
});

t.test('trim reaches every tenant stream; a key of another type reads as empty', async (t) => {
  let now = T0;
  const { store, prefix, cleanup } = make({ retentionDays: 1, now: () => now });
  t.teardown(cleanup);
  // Enough entries for `~` trimming to free whole stream nodes.
  for (let i = 0; i < 300; i++) await store.append(cdr('idle', T0 - 1000 + i));
  now = T0 + 2 * 86_400_000;
  await store.trim();
  t.equal(await redis.xlen(cdrKey(prefix, 'idle')), 0, 'the idle tenant\'s stream is trimmed');
  await redis.set(cdrKey(prefix, 'odd'), 'not a stream');
  t.strictSame(await store.query({ tenant: 'odd', limit: 5 }), { items: [] });
  await t.resolves(store.trim(), 'trim skips it');
});

t.test('a stream entry not written by the store is skipped, not returned', async (t) => {
  const { store, prefix, cleanup } = make({ now: () => T0 });
  t.teardown(cleanup);
  const good = cdr('acme', T0 - 2000);
  await store.append(good);
  await redis.xadd(cdrKey(prefix, 'acme'), `${T0 - 1000}-0`, 'x', 'garbage');
  await redis.xadd(cdrKey(prefix, 'acme'), `${T0 - 500}-0`, 'r', '{not json');
  t.strictSame(await store.query({ tenant: 'acme', limit: 10 }), { items: [good] });
});
