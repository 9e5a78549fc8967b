/**
 * RedisTenantStore against a real Redis (REDIS_URL, default localhost).
 * CI provides one, so an unreachable Redis fails this file instead of
 * skipping it. Every key lives under a per-run prefix, deleted at the end
 * with SCAN (never KEYS or FLUSHDB: the Redis may be shared).
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { createRedisClient, waitForRedisReady } from '../../src/store/redis/connect.js';
import {
  RedisTenantStore, configChannel, counterKey, globalKey, tenantIndexKey, tenantKey,
} from '../../src/store/redis/tenant-store.js';
import { StoredDocumentCorrupt } from '../../src/store/store-error.js';
import { recordChanges, smallTenant, tenantContract } from '../unit/store/tenant-contract.js';
import { deleteKeysWithPrefix, keysWithPrefix } from '../helpers/redis-prefix.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const runPrefix = `dptest:${process.pid}:${randomBytes(4).toString('hex')}:`;

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
  const makeStore = async (options: { onListenerError?: (err: unknown) => void } = {}): Promise<{
    store: RedisTenantStore; prefix: string; watchReady: () => Promise<void>; cleanup: () => Promise<void>;
  }> => {
    stores += 1;
    const prefix = `${runPrefix}${stores}:`;
    const store = new RedisTenantStore({ redis, prefix, ...options });
    return {
      store,
      prefix,
      watchReady: () => store.whenWatching(),
      cleanup: async () => {
        await store.close();
        await deleteKeysWithPrefix(redis, prefix);
      },
    };
  };

  t.test('contract', async (t) => {
    tenantContract(t, () => makeStore());
  });

  t.test('key layout: a hash per tenant under its hash tag, a version index, counters under the tenant\'s tag', async (t) => {
    const { store, prefix, cleanup } = await makeStore();
    t.teardown(cleanup);
    t.equal(tenantKey(prefix, 'acme'), `${prefix}tenant:{acme}`);
    t.equal(counterKey(prefix, 'rr:acme:group:sales'), `${prefix}rr:{acme}:group:sales`);
    t.equal(counterKey(prefix, 'rr:acme'), `${prefix}rr:{acme}`);
    t.equal(counterKey(prefix, 'other:key'), `${prefix}ctr:{other:key}`);
    t.equal(configChannel(prefix), `${prefix}config`);

    const doc = smallTenant('acme', '前台');
    const v1 = await store.putTenant(doc);
    t.strictSame(await redis.hgetall(tenantKey(prefix, 'acme')), { v: String(v1), doc: JSON.stringify(doc) },
      'the hash holds the version and the writer\'s exact JSON text');
    t.strictSame(await redis.hgetall(tenantIndexKey(prefix)), { acme: String(v1) });

    t.equal(await store.deleteTenant('acme'), true);
    const tombstone = await redis.hgetall(tenantKey(prefix, 'acme'));
    t.strictSame(Object.keys(tombstone), ['v'], 'a deleted tenant leaves only its version');
    t.ok(Number(tombstone.v) > v1, 'which is newer than the deleted document');
    t.equal(await redis.hget(tenantIndexKey(prefix), 'acme'), `-${tombstone.v}`, 'the index marks the deletion');

    await store.incrCounter('rr:acme:group:sales');
    t.equal(await redis.get(`${prefix}rr:{acme}:group:sales`), '1');
    const gv = await store.putGlobal({ blacklist: { numbers: ['+8617000000000'] } });
    t.equal(await redis.hget(globalKey(prefix), 'v'), String(gv));
  });

  t.test('a second store on another connection hears the first store\'s writes (two nodes)', async (t) => {
    const { store: nodeA, prefix, cleanup } = await makeStore();
    t.teardown(cleanup);
    const other = createRedisClient(url, log);
    t.teardown(() => { other.disconnect(); });
    await waitForRedisReady(other, 5_000);
    const nodeB = new RedisTenantStore({ redis: other, prefix });
    t.teardown(() => nodeB.close());
    const rec = recordChanges(nodeB);
    await nodeB.whenWatching();
    const version = await nodeA.putTenant(smallTenant('acme'));
    await rec.until((c) => c.length === 1, 'node B hearing node A');
    t.strictSame(rec.changes, [{ kind: 'tenant', tenant: 'acme', version }]);
    t.strictSame(await nodeB.getTenant('acme'), { version, doc: smallTenant('acme') });
  });

  t.test('garbage on the channel is ignored and the subscription keeps working', async (t) => {
    const { store, prefix, cleanup } = await makeStore();
    t.teardown(cleanup);
    const rec = recordChanges(store);
    await store.whenWatching();
    const channel = configChannel(prefix);
    const garbage = [
      'not json', '', 'null', '[]', '{"kind":"tenant"}', '{"kind":"tenant","tenant":"a","version":-1}',
      '{"kind":"tenant","tenant":"a","version":1.5}', '{"kind":"tenant","tenant":"","version":1}',
      '{"kind":"tenant","tenant":"a","version":1,"deleted":"yes"}', '{"kind":"global","version":"7"}',
      '{"kind":"unknown","version":1}', `{"kind":"global","version":1,"pad":"${'x'.repeat(10_000)}"}`, '\u0000\uffff',
    ];
    for (const message of garbage) await redis.publish(channel, message);
    await redis.publish(channel, '{"kind":"global","version":5,"from":"a newer node"}');
    const version = await store.putTenant(smallTenant('acme'));
    await rec.until((c) => c.length === 2, 'the valid announcements');
    t.strictSame(rec.changes, [{ kind: 'global', version: 5 }, { kind: 'tenant', tenant: 'acme', version }],
      'only well-formed announcements reach listeners (unknown extra fields are ignored)');
  });

  t.test('corrupt or foreign values never crash; reads and conditional writes agree on their version', async (t) => {
    const { store, prefix, cleanup } = await makeStore();
    t.teardown(cleanup);
    const key = (id: string): string => tenantKey(prefix, id);

    await redis.hset(key('nojson'), 'v', '42', 'doc', '{"id":"nojson",');
    const err: unknown = await store.getTenant('nojson').then(() => undefined, (e: unknown) => e);
    t.type(err, StoredDocumentCorrupt, 'a document that is not JSON: StoredDocumentCorrupt');
    t.match(err, { code: 'DP_STORE_CORRUPT_DOCUMENT', version: 42 }, 'carrying its version');
    await t.rejects(store.putTenant(smallTenant('nojson'), { ifVersion: 0 }), { code: 'DP_STORE_CONFLICT', actual: 42 });
    t.ok(await store.putTenant(smallTenant('nojson'), { ifVersion: 42 }) > 42, 'a write with its version replaces it');
    t.strictSame((await store.getTenant('nojson'))?.doc, smallTenant('nojson'));

    await redis.hset(key('array'), 'v', '7', 'doc', '[1,2]');
    await t.rejects(store.getTenant('array'), { code: 'DP_STORE_CORRUPT_DOCUMENT', version: 7 }, 'JSON that is not an object');
    await redis.hset(key('wrongid'), 'v', '8', 'doc', '{"id":"someone-else"}');
    await t.rejects(store.getTenant('wrongid'), { code: 'DP_STORE_CORRUPT_DOCUMENT', version: 8 }, 'a document filed under another id');

    const absentCases: [name: string, id: string, write: () => Promise<unknown>][] = [
      ['garbage version', 'badv', () => redis.hset(key('badv'), 'v', 'x1', 'doc', '{"id":"badv"}')],
      ['version beyond 2^53', 'hugev', () => redis.hset(key('hugev'), 'v', '99999999999999999', 'doc', '{"id":"hugev"}')],
      ['a string key', 'string', () => redis.set(key('string'), '{"id":"string"}')],
      ['a list key', 'list', () => redis.rpush(key('list'), 'x')],
    ];
    for (const [name, id, write] of absentCases) {
      await write();
      t.equal(await store.getTenant(id), undefined, `${name}: reads as absent`);
      t.ok(await store.putTenant(smallTenant(id), { ifVersion: 0 }) > 0, `${name}: and a create replaces it`);
      t.strictSame((await store.getTenant(id))?.doc, smallTenant(id), `${name}: repaired`);
    }

    await redis.hset(tenantIndexKey(prefix), 'junk', 'abc', 'neg', '-5', 'float', '1.5');
    const versions = await store.tenantVersions();
    t.notOk(versions.has('junk') || versions.has('neg') || versions.has('float'), 'unparsable index entries are skipped');
    t.ok(versions.has('nojson'), 'valid entries are still listed');

    await redis.hset(globalKey(prefix), 'v', '3', 'doc', 'garbage');
    await t.rejects(store.getGlobal(), { code: 'DP_STORE_CORRUPT_DOCUMENT', version: 3 });
    t.equal(await store.globalVersion(), 3);
    t.ok(await store.putGlobal({}, { ifVersion: 3 }) > 3, 'the global document is repaired the same way');

    await redis.set(`${prefix}rr:{acme}:bad`, 'not a number');
    await t.rejects(store.incrCounter('rr:acme:bad'), /not an integer/, 'a counter holding garbage rejects instead of crashing');
  });

  t.test('the index only moves forward, and a failed index update is reported after the write committed', async (t) => {
    const { store, prefix, cleanup } = await makeStore();
    t.teardown(cleanup);
    const index = tenantIndexKey(prefix);
    const v1 = await store.putTenant(smallTenant('acme'));
    const ahead = String(v1 + 1_000_000_000);
    await redis.hset(index, 'acme', ahead);
    await store.putTenant(smallTenant('acme', 'newer document, older clock'));
    t.equal(await redis.hget(index, 'acme'), ahead, 'an index entry is never lowered (racing updates cannot regress it)');

    const { store: other, prefix: otherPrefix, cleanup: otherCleanup } = await makeStore();
    t.teardown(otherCleanup);
    const rec = recordChanges(other);
    await other.whenWatching();
    await redis.set(tenantIndexKey(otherPrefix), 'not a hash');
    const err: unknown = await other.putTenant(smallTenant('lagging')).then(() => undefined, (e: unknown) => e);
    t.match(err, { code: 'DP_STORE_INDEX_LAG', message: /was written and announced/ }, 'the writer hears that the index lags');
    t.equal((await other.getTenant('lagging'))?.doc.id, 'lagging', 'the document itself is committed');
    await rec.until((c) => c.length === 1, 'the announcement');
    t.match(rec.changes, [{ kind: 'tenant', tenant: 'lagging' }], 'and was announced by the write script');
  });

  t.test('the write script survives SCRIPT FLUSH (EVALSHA falls back to EVAL)', async (t) => {
    const { store, cleanup } = await makeStore();
    t.teardown(cleanup);
    const v1 = await store.putTenant(smallTenant('acme'));
    await redis.script('FLUSH');
    const v2 = await store.putTenant(smallTenant('acme', 'after flush'), { ifVersion: v1 });
    t.ok(v2 > v1);
    t.equal(await store.deleteTenant('acme', { ifVersion: v2 }), true);
  });

  t.test('a throwing listener neither stops the others nor the subscription', async (t) => {
    const errors: unknown[] = [];
    const { store, cleanup } = await makeStore({ onListenerError: (err) => { errors.push(err); } });
    t.teardown(cleanup);
    store.watch(() => { throw new Error('listener bug'); });
    const rec = recordChanges(store);
    await store.whenWatching();
    const v1 = await store.putTenant(smallTenant('acme'));
    const v2 = await store.putTenant(smallTenant('acme', 'again'));
    await rec.until((c) => c.length === 2, 'both announcements');
    t.strictSame(rec.changes.map((c) => c.version), [v1, v2]);
    t.match(errors, [{ message: 'listener bug' }, { message: 'listener bug' }]);
  });

  t.test('close ends the subscriber connection; watch afterwards is inert', async (t) => {
    const { store, prefix, cleanup } = await makeStore();
    t.teardown(cleanup);
    const rec = recordChanges(store);
    await store.whenWatching();
    const name = 'dialplane-config-watch';
    const subscribers = async (): Promise<number> => ((await redis.client('LIST')) as string)
      .split('\n').filter((line) => line.includes(`name=${name}`) && line.includes(`sub=1`)).length;
    const before = await subscribers();
    t.ok(before >= 1, 'a subscriber connection is open');
    await store.close();
    const deadline = Date.now() + 5_000;
    while ((await subscribers()) >= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    t.equal(await subscribers(), before - 1, 'closed');
    let heardAfterClose = 0;
    store.watch(() => { heardAfterClose += 1; });
    // A live store on the same prefix: once it has heard a write, a still
    // subscribed closed store would have heard it too.
    const live = new RedisTenantStore({ redis, prefix });
    t.teardown(() => live.close());
    const witness = recordChanges(live);
    await live.whenWatching();
    await live.putTenant(smallTenant('after-close'));
    await witness.until((c) => c.length === 1, 'the live store hearing the write');
    t.strictSame(rec.changes, [], 'the closed store\'s listeners heard nothing');
    t.equal(heardAfterClose, 0, 'nor did one added after close');
  });

  t.test('no outage was logged during these tests', async (t) => {
    t.strictSame(outages, []);
  });
}
