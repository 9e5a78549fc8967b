/**
 * The admin API's rate limit on a real Redis (REDIS_URL, default localhost):
 * two admin apps (two nodes) sharing one Redis share one budget per
 * credential, and an unreachable Redis lets requests through instead of
 * failing them. Keys live under a per-run prefix, deleted at the end.
 */
import { createServer } from 'node:net';
import t from 'tap';
import { createRedisClient, waitForRedisReady } from '../../src/store/redis/connect.js';
import { adminRateLimitBackend, adminRateLimitKeyPrefix } from '../../src/store/redis/admin-rate-limit.js';
import { EmbeddedApiKeyStore } from '../../src/store/embedded/api-key-store.js';
import { EmbeddedTenantStore } from '../../src/store/embedded/tenant-store.js';
import { startAdmin, type Backend } from '../unit/admin/admin-suite.js';
import { deleteKeysWithPrefix, keysWithPrefix, redisUrl, runPrefix } from '../helpers/redis-prefix.js';

const quiet = { warn: () => undefined, info: () => undefined };
const prefix = runPrefix('admin-rate');
const redis = createRedisClient(redisUrl, quiet);
t.teardown(async () => {
  try {
    if (redis.status === 'ready') {
      await deleteKeysWithPrefix(redis, prefix);
      const left = await keysWithPrefix(redis, prefix);
      if (left.length > 0) throw new Error(`keys left behind: ${left.join(', ')}`);
    }
  } finally {
    redis.disconnect();
  }
});

async function embedded(): Promise<Backend> {
  const store = await EmbeddedTenantStore.open();
  const keys = await EmbeddedApiKeyStore.open();
  return { store, keys, cleanup: async () => { await keys.close(); await store.close(); } };
}

let reachable = true;
try {
  await waitForRedisReady(redis, 5_000);
} catch (err) {
  reachable = false;
  t.fail(`Redis at ${redisUrl} is not reachable (CI must provide one): ${err instanceof Error ? err.message : String(err)}`);
}

if (reachable) {
  t.test('two nodes on one Redis share one budget per credential', async (t) => {
    const shared = adminRateLimitBackend(redis, prefix);
    const rateLimit = { max: 3, timeWindowMs: 60_000 };
    const a = await startAdmin(t, embedded, { rateLimit, sharedRateLimit: shared });
    const b = await startAdmin(t, embedded, { rateLimit, sharedRateLimit: shared });
    t.equal((await a.call('GET', '/v1/tenants')).statusCode, 200);
    t.equal((await b.call('GET', '/v1/tenants')).statusCode, 200);
    t.equal((await a.call('GET', '/v1/tenants')).statusCode, 200);
    const over = await b.call('GET', '/v1/tenants');
    t.equal(over.statusCode, 429, 'the second node sees the budget the first used up');
    t.match(over.json(), { error: { code: 'DP_ADMIN_RATE_LIMITED' } });
    t.equal((await a.call('GET', '/v1/tenants')).statusCode, 429, 'and so does the first');
    t.equal((await b.call('GET', '/v1/tenants', { auth: 'a-wrong-guess' })).statusCode, 401, 'another credential (here: an address) has its own budget');
    t.equal((await a.call('GET', '/health')).statusCode, 200, 'probes are never limited');

    const key = `${adminRateLimitKeyPrefix(prefix)}operator`;
    t.equal(await redis.get(key), '5', 'one counter for the operator, under <prefix>admin-rate:');
    const ttl = await redis.pttl(key);
    t.ok(ttl > 0 && ttl <= 60_000, `expires with the window (${ttl} ms)`);
    t.ok((await keysWithPrefix(redis, prefix)).every((k) => k.startsWith(adminRateLimitKeyPrefix(prefix))), 'nothing outside the namespace');
  });

  t.test('without the shared store each node counts for itself (the embedded case)', async (t) => {
    const rateLimit = { max: 1, timeWindowMs: 60_000 };
    const a = await startAdmin(t, embedded, { rateLimit });
    const b = await startAdmin(t, embedded, { rateLimit });
    t.equal((await a.call('GET', '/v1/tenants')).statusCode, 200);
    t.equal((await b.call('GET', '/v1/tenants')).statusCode, 200);
    t.equal((await a.call('GET', '/v1/tenants')).statusCode, 429);
  });
}

t.test('an unreachable Redis does not close the admin API: requests pass, unlimited, without waiting', async (t) => {
  // A port nothing listens on: bind one, then let it go.
  const port = await new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
  const dead = createRedisClient(`redis://127.0.0.1:${port}`, quiet);
  t.teardown(() => dead.disconnect());
  const a = await startAdmin(t, embedded, { rateLimit: { max: 1, timeWindowMs: 60_000 }, sharedRateLimit: adminRateLimitBackend(dead, prefix) });
  const started = Date.now();
  for (let i = 0; i < 3; i++) t.equal((await a.call('GET', '/v1/tenants')).statusCode, 200, `request ${i + 1}`);
  t.ok(Date.now() - started < 3000, 'the limiter fails fast (no offline queue)');
});
