/**
 * The admin API on a real Redis (REDIS_URL, default localhost): the same
 * suite as on the embedded store, the API key store contract, and a change
 * made through one node's API reaching another node's compiled rules within
 * a second. Every key lives under a per-run prefix, deleted at the end with
 * SCAN (never KEYS or FLUSHDB: the Redis may be shared).
 */
import t from 'tap';
import { pino } from 'pino';
import { RedisApiKeyStore, apiKeyKey, tenantApiKeysKey } from '../../src/store/redis/api-key-store.js';
import { RedisTenantStore } from '../../src/store/redis/tenant-store.js';
import { TenantCache } from '../../src/store/tenant-cache.js';
import { apiKeyContract, record } from '../unit/store/api-key-contract.js';
import { adminSuite, startAdmin, type Backend } from '../unit/admin/admin-suite.js';
import { deleteKeysWithPrefix, redisForFile } from '../helpers/redis-prefix.js';

const { redis, base: runPrefix } = await redisForFile(t, 'admin');

let n = 0;
const nextPrefix = (): string => `${runPrefix}${++n}:`;
const backend = async (prefix = nextPrefix()): Promise<Backend> => {
  const store = new RedisTenantStore({ redis, prefix });
  const keys = new RedisApiKeyStore({ redis, prefix });
  return {
    store, keys,
    watchReady: () => store.whenWatching(),
    cleanup: async () => { await keys.close(); await store.close(); await deleteKeysWithPrefix(redis, prefix); },
  };
};

t.test('API key store contract', async (t) => {
  apiKeyContract(t, async () => {
    const prefix = nextPrefix();
    const store = new RedisApiKeyStore({ redis, prefix });
    return { store, cleanup: async () => { await store.close(); await deleteKeysWithPrefix(redis, prefix); } };
  });
});

t.test('API key layout, and a corrupt record is no key', async (t) => {
  const prefix = nextPrefix();
  t.teardown(() => deleteKeysWithPrefix(redis, prefix));
  const store = new RedisApiKeyStore({ redis, prefix });
  const r = record('acme');
  await store.create(r);
  t.same(JSON.parse((await redis.get(apiKeyKey(prefix, r.id))) ?? 'null'), r);
  t.same(await redis.smembers(tenantApiKeysKey(prefix, 'acme')), [r.id]);
  await redis.set(apiKeyKey(prefix, r.id), '{"id":"forged"');
  t.equal(await store.get(r.id), undefined);
  await redis.sadd(tenantApiKeysKey(prefix, 'acme'), 'ffffffffffffffff');
  t.same(await store.list('acme'), [], 'dangling members are skipped');
  t.same(await redis.smembers(tenantApiKeysKey(prefix, 'acme')), [r.id], 'and the one without a record is removed');
});

t.test('admin API suite on Redis', async (t) => {
  adminSuite(t, backend);
});

t.test('a change through one node reaches another node within a second', async (t) => {
  const prefix = nextPrefix();
  const b = await backend(prefix);
  const a = await startAdmin(t, async () => b);
  t.equal((await a.call('PUT', '/v1/tenants/acme', { body: { name: 'Acme' } })).statusCode, 201);
  // Node 2: its own store object (own subscriber connection) and cache on the same keys.
  const node2Store = new RedisTenantStore({ redis, prefix });
  const node2 = new TenantCache({ store: node2Store, log: pino({ level: 'silent' }), verifyIntervalMs: 60_000 });
  await node2.start();
  await node2Store.whenWatching();
  t.teardown(async () => { await node2.stop(); await node2Store.close(); });
  t.ok(node2.get('acme'), 'node 2 loaded the tenant');

  const put = await a.call('PUT', '/v1/tenants/acme/extensions/1001', { body: { name: 'Reception', password: 'password-1001' } });
  t.equal(put.statusCode, 201);
  const version = (await b.store.getTenant('acme'))!.version;
  const start = Date.now();
  while (node2.get('acme')?.version !== version && Date.now() - start < 1000) await new Promise((r) => setTimeout(r, 10));
  t.equal(node2.get('acme')?.version, version, `node 2 has the new rules after ${Date.now() - start} ms`);
  t.ok(node2.get('acme')?.compiled.extensions.has('1001'));
});
