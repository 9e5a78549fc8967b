/**
 * RedisLocationStore against a real Redis (REDIS_URL, default localhost).
 * CI provides one, so an unreachable Redis fails this file instead of
 * skipping it. Every key lives under a per-run prefix, deleted at the end
 * with SCAN (never KEYS or FLUSHDB: the Redis may be shared).
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import type { Binding } from '../../src/sip/registrar/location-service.js';
import { createRedisClient, waitForRedisReady } from '../../src/store/redis/connect.js';
import { RedisLocationStore, locationIndexKey, locationKey } from '../../src/store/redis/location-store.js';
import { locationContract } from '../unit/store/location-contract.js';
import { deleteKeysWithPrefix, keysWithPrefix } from '../helpers/redis-prefix.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const runPrefix = `dptest:${process.pid}:${randomBytes(4).toString('hex')}:`;
const HOUR = 3_600_000;

const outages: string[] = [];
const log = {
  warn: (_obj: object, msg: string) => { outages.push(msg); },
  info: (_obj: object, msg: string) => { outages.push(msg); },
};




const redis = createRedisClient(url, log);
t.teardown(async () => {
  try {
    if (redis.status === 'ready') {
      await deleteKeysWithPrefix(redis, runPrefix);
      const left = await keysWithPrefix(redis, runPrefix);
      if (left.length > 0) throw new Error(`keys left behind: ${left.join(', ')}`);
    }
  } finally {
    redis.disconnect();
  }
});

let reachable = true;
try {
  await waitForRedisReady(redis, 5_000);
} catch (err) {
  reachable = false;
  t.fail(`Redis at ${url} is not reachable (CI must provide one): ${err instanceof Error ? err.message : String(err)}`);
}

if (reachable) {
  let stores = 0;
  const makeStore = async (): Promise<{ store: RedisLocationStore; prefix: string; cleanup: () => Promise<void> }> => {
    stores += 1;
    const prefix = `${runPrefix}${stores}:`;
    return { store: new RedisLocationStore({ redis, prefix }), prefix, cleanup: () => deleteKeysWithPrefix(redis, prefix) };
  };

  t.test('contract', async (t) => {
    locationContract(t, makeStore);
  });

  const T0 = Date.now();
  const binding = (aor: string, n: number, expiresAt = T0 + HOUR): Binding => ({
    aor,
    contact: `sip:phone${n}@192.0.2.1:5060`,
    expiresAt,
    q: 1,
    callId: `c${n}`,
    cseq: n,
    path: [],
    flow: { transport: 'udp', address: '192.0.2.1', port: 5060 },
    registeredAt: T0,
  });

  t.test('one key per AOR with a hash tag, JSON value, PEXPIREAT at the latest expiry', async (t) => {
    const { store, prefix, cleanup } = await makeStore();
    t.teardown(cleanup);
    const aor = 'sip:alice@example.com';
    const key = locationKey(prefix, aor);
    t.equal(key, `${prefix}loc:{sip:alice@example.com}`);

    const latest = T0 + HOUR + 0.4; // PEXPIREAT takes whole ms: rounded up, never down
    t.equal(await store.put(aor, 0, [binding(aor, 1, T0 + 60_000), binding(aor, 2, latest)]), true);
    const raw = await redis.get(key);
    t.match(raw, /^\{"version":\d+,"bindings":\[/, 'value is the JSON record');
    const ttl = await redis.pttl(key);
    const expected = Math.ceil(latest) - Date.now();
    t.ok(ttl <= expected + 50 && ttl > expected - 5_000, `PTTL ${ttl} ms matches the latest expiry (${expected} ms away)`);
    t.equal(await redis.zscore(locationIndexKey(prefix), aor), String(Math.ceil(latest)), 'index score');

    const { version } = await store.get(aor, T0);
    t.equal(await store.put(aor, version, [binding(aor, 3, T0 + 120_000)]), true);
    const shorter = await redis.pttl(key);
    t.ok(shorter <= 120_000 && shorter > 110_000, `a shorter registration shortens the TTL (${shorter} ms)`);
  });

  t.test('Redis forgets AORs by itself', async (t) => {
    const { store, prefix, cleanup } = await makeStore();
    t.teardown(cleanup);
    const gone = 'sip:expired@example.com';
    t.equal(await store.put(gone, 0, [binding(gone, 1, Date.now() - 1_000)]), true);
    t.equal(await redis.exists(locationKey(prefix, gone)), 0, 'key with an expiry in the past is gone at once');
    t.strictSame(await store.get(gone, Date.now()), { version: 0, bindings: [] });

    const removed = 'sip:removed@example.com';
    t.equal(await store.put(removed, 0, [binding(removed, 1)]), true);
    const { version } = await store.get(removed, T0);
    t.equal(await store.put(removed, version, []), true);
    t.equal(await redis.exists(locationKey(prefix, removed)), 0, 'empty list deletes the key');
    t.strictSame(await store.list(T0), []);
  });

  t.test('list tolerates and repairs a stale index', async (t) => {
    const { store, prefix, cleanup } = await makeStore();
    t.teardown(cleanup);
    const index = locationIndexKey(prefix);
    const live = 'sip:live@example.com';
    t.equal(await store.put(live, 0, [binding(live, 1)]), true);

    await redis.zadd(index, T0 + HOUR, 'sip:vanished@example.com');
    await redis.zadd(index, Date.now() - 1_000, 'sip:long-dead@example.com');
    t.strictSame(await store.list(T0), [live], 'members without a live key are not listed');
    t.equal(await redis.zscore(index, 'sip:long-dead@example.com'), null, 'members past their expiry are pruned');
  });

  t.test('corrupt or foreign values never crash and get and put agree on their version', async (t) => {
    const { store, prefix, cleanup } = await makeStore();
    t.teardown(cleanup);
    const good = binding('sip:x@example.com', 1);
    const cases: [name: string, raw: string, version: number, bindings: Binding[]][] = [
      ['not JSON', '\u0000\u00ff\u00fe garbage', 0, []],
      ['truncated record keeps its version', '{"version":17,"bindings":[{"aor":', 17, []],
      ['bindings not an array', '{"version":5,"bindings":"x"}', 5, []],
      ['a bad binding among good ones', `{"version":6,"bindings":[{"q":"x"},${JSON.stringify(good)}]}`, 6, [good]],
      ['hex number (cjson would accept it, JSON does not)', '{"version":0x10,"bindings":[]}', 0, []],
      ['version as a string', '{"version":"9","bindings":[]}', 0, []],
      ['version beyond 2^53', '{"version":99999999999999999,"bindings":[]}', 0, []],
      ['JSON null', 'null', 0, []],
    ];
    for (const [i, [name, raw, version, bindings]] of cases.entries()) {
      const aor = `sip:corrupt${i}@example.com`;
      await redis.set(locationKey(prefix, aor), raw);
      const got = await store.get(aor, T0);
      t.strictSame(got, { version, bindings }, `${name}: get`);
      if (version !== 0) t.equal(await store.put(aor, 0, [binding(aor, 2)]), false, `${name}: version 0 loses`);
      t.equal(await store.put(aor, got.version, [binding(aor, 3)]), true, `${name}: put with the version get reported wins`);
      t.strictSame((await store.get(aor, T0)).bindings, [binding(aor, 3)], `${name}: repaired`);
    }

    const wrongType = 'sip:hash@example.com';
    await redis.hset(locationKey(prefix, wrongType), 'field', 'value');
    t.strictSame(await store.get(wrongType, T0), { version: 0, bindings: [] }, 'a key of another type reads as absent');
    t.equal(await store.put(wrongType, 0, [binding(wrongType, 1)]), true, 'and is overwritten by the next put');
    t.strictSame((await store.get(wrongType, T0)).bindings, [binding(wrongType, 1)]);
  });

  t.test('writers on separate connections racing with one version: exactly one wins', async (t) => {
    const { prefix, cleanup } = await makeStore();
    t.teardown(cleanup);
    const clients = Array.from({ length: 4 }, () => createRedisClient(url, log));
    t.teardown(() => { for (const c of clients) c.disconnect(); });
    await Promise.all(clients.map((c) => waitForRedisReady(c, 5_000)));
    const stores = clients.map((c) => new RedisLocationStore({ redis: c, prefix }));
    const aor = 'sip:contended@example.com';
    const first = stores[0];
    if (first === undefined) throw new Error('no store');
    t.equal(await first.put(aor, 0, [binding(aor, 0)]), true);
    const { version } = await first.get(aor, T0);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => stores[i % stores.length]?.put(aor, version, [binding(aor, i + 1)])),
    );
    t.equal(results.filter((r) => r === true).length, 1, 'one winner among 20 writers on 4 connections');
  });

  t.test('the CAS script survives SCRIPT FLUSH (EVALSHA falls back to EVAL)', async (t) => {
    const { store, cleanup } = await makeStore();
    t.teardown(cleanup);
    const aor = 'sip:flush@example.com';
    t.equal(await store.put(aor, 0, [binding(aor, 1)]), true);
    await redis.script('FLUSH');
    const { version } = await store.get(aor, T0);
    t.equal(await store.put(aor, version, [binding(aor, 2)]), true);
    t.strictSame((await store.get(aor, T0)).bindings, [binding(aor, 2)]);
  });

  t.test('an AOR that UTF-8 cannot carry is refused rather than aliased', async (t) => {
    const { store, cleanup } = await makeStore();
    t.teardown(cleanup);
    await t.rejects(store.put('sip:\uD800@example.com', 0, [binding('sip:\uD800@example.com', 1)]), { code: 'DP_STORE_BAD_AOR' });
    await t.rejects(store.get('sip:\uDC00@example.com', T0), { code: 'DP_STORE_BAD_AOR' });
  });

  t.test('no outage was logged during these tests', async (t) => {
    t.strictSame(outages, []);
  });
}
