/**
 * Two call-server "nodes" (each a TenantCache on its own RedisTenantStore
 * and connections) through a real Redis outage: a private redis-server on
 * port 16411 is started, killed and restarted empty. The caches must keep
 * serving the cached rules, log the outage once and the recovery once, and
 * converge again afterwards. A second test shows that a change nobody
 * announced reaches the caches through the periodic version check.
 *
 * The version check runs on real timers every 100 ms; a scheduler that can
 * be paused makes sure the first propagation is pub/sub's doing alone.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import type { Redis } from 'ioredis';
import type { Logger } from '../../src/sip/logger.js';
import { createRedisClient, waitForRedisReady } from '../../src/store/redis/connect.js';
import { RedisTenantStore, globalKey, tenantIndexKey, tenantKey } from '../../src/store/redis/tenant-store.js';
import { TenantCache, type IntervalScheduler } from '../../src/store/tenant-cache.js';
import { exampleTenant, smallTenant } from '../unit/store/tenant-contract.js';
import { startRedisServer, stopRedisServer, until } from '../helpers/redis-server.js';

const PORT = 16411;
const URL = `redis://127.0.0.1:${PORT}`;
const VERIFY_MS = 100;

/** This file's redis-server children: the teardown stops whatever is left. */
const children = new Set<ChildProcess>();

async function startRedis(): Promise<ChildProcess> {
  const child = await startRedisServer(PORT);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

const stopRedis = stopRedisServer;

interface Line { level: string; obj: object; msg: string | undefined }

function recordingLogger(): Logger & { lines: Line[]; count(level: string, msg?: RegExp): number } {
  const lines: Line[] = [];
  const push = (level: string) => (obj: object, msg?: string): void => { lines.push({ level, obj, msg }); };
  const log = {
    lines,
    count: (level: string, msg?: RegExp) => lines.filter((l) => l.level === level && (msg === undefined || msg.test(l.msg ?? ''))).length,
    child: () => log,
    debug: push('debug'),
    info: push('info'),
    warn: push('warn'),
    error: push('error'),
  };
  return log;
}

/** Real intervals whose jobs can be suspended; counts the ticks that ran. */
function pausableScheduler(): IntervalScheduler & { paused: boolean; ticks: number } {
  const scheduler = Object.assign(
    (job: () => void, intervalMs: number) => {
      const handle = setInterval(() => {
        if (scheduler.paused) return;
        scheduler.ticks += 1;
        job();
      }, intervalMs);
      return () => clearInterval(handle);
    },
    { paused: false, ticks: 0 },
  );
  return scheduler;
}

interface Node {
  redis: Redis;
  store: RedisTenantStore;
  cache: TenantCache;
  log: ReturnType<typeof recordingLogger>;
}

const silent = { warn: () => undefined, info: () => undefined };

async function startNode(t: Test, prefix: string, scheduler: IntervalScheduler): Promise<Node> {
  const redis = createRedisClient(URL, silent);
  await waitForRedisReady(redis, 5_000);
  const store = new RedisTenantStore({ redis, prefix });
  const log = recordingLogger();
  const cache = new TenantCache({ store, log, verifyIntervalMs: VERIFY_MS, scheduleInterval: scheduler });
  t.teardown(async () => {
    await cache.stop();
    await store.close();
    redis.disconnect();
  });
  await cache.start();
  await store.whenWatching();
  return { redis, store, cache, log };
}

t.teardown(async () => {
  for (const child of [...children]) await stopRedis(child);
});

t.test('two nodes: pub/sub propagation, an outage served from the cache and logged once, recovery and convergence', async (t) => {
  const server = await startRedis();
  const prefix = `dptest:${randomBytes(4).toString('hex')}:`;
  const scheduler = pausableScheduler();
  scheduler.paused = true; // first: announcements only
  const a = await startNode(t, prefix, scheduler);
  const b = await startNode(t, prefix, scheduler);
  const writer = createRedisClient(URL, silent);
  t.teardown(() => { writer.disconnect(); });
  await waitForRedisReady(writer, 5_000);
  const writerStore = new RedisTenantStore({ redis: writer, prefix });

  const doc = exampleTenant('short-number-plan');
  const v1 = await a.store.putTenant(doc);
  await until(() => b.cache.get(doc.id)?.version === v1, 5_000, 'node B to hear node A\'s write');
  t.equal(scheduler.ticks, 0, 'with the version check paused: pub/sub carried it');
  t.strictSame(b.cache.get(doc.id)?.doc, doc);
  await until(() => a.cache.get(doc.id)?.version === v1, 5_000, 'node A to hear its own write');

  scheduler.paused = false;
  await stopRedis(server);
  await until(() => a.log.count('warn') > 0 && b.log.count('warn') > 0, 5_000, 'both caches to notice the outage');
  const ticksAtWarning = scheduler.ticks;
  // Let each node run several more failing checks (two nodes share the counter).
  await until(() => scheduler.ticks >= ticksAtWarning + 10, 5_000, 'more version checks during the outage');
  for (const [name, node] of [['A', a], ['B', b]] as const) {
    t.equal(node.cache.get(doc.id)?.version, v1, `node ${name} still routes with the cached rules`);
    t.equal(node.log.count('warn'), 1, `node ${name} logged the outage exactly once`);
    t.match(node.log.lines.find((l) => l.level === 'warn'), { msg: /unreachable/ });
    t.equal(node.log.count('info', /reachable again/), 0, `node ${name} has not recovered yet`);
  }

  await startRedis(); // stopped by the file's teardown, like every child
  await waitForRedisReady(writer, 10_000);
  // The restarted Redis is empty (no persistence): an admin writes the tenant again.
  const edited = { ...doc, name: `${doc.name ?? ''} (restored)` };
  const v2 = await writerStore.putTenant(edited);
  t.ok(v2 > v1, `the new version is newer even though Redis lost the old one (${v2} > ${v1})`);
  await until(() => a.cache.get(doc.id)?.version === v2 && b.cache.get(doc.id)?.version === v2, 10_000, 'both caches to converge');
  // The new version may arrive by pub/sub before the next poll notices the store is back (and logs it).
  await until(() => a.log.count('info', /reachable again/) > 0 && b.log.count('info', /reachable again/) > 0, 10_000, 'both nodes to notice the recovery');
  for (const [name, node] of [['A', a], ['B', b]] as const) {
    t.strictSame(node.cache.get(doc.id)?.doc, edited, `node ${name} has the restored document`);
    t.equal(node.log.count('info', /reachable again/), 1, `node ${name} logged the recovery exactly once`);
    t.equal(node.log.count('warn'), 1, `node ${name} logged no second outage`);
  }

  // Pub/sub works again after the reconnect, not just polling. (A message
  // published before a subscriber has subscribed again is lost; the version
  // check heals that, so with it paused, wait for the subscriptions.)
  await Promise.all([a.store.whenWatching(), b.store.whenWatching()]);
  scheduler.paused = true;
  const v3 = await writerStore.putTenant({ ...edited, name: 'after recovery' });
  await until(() => a.cache.get(doc.id)?.version === v3 && b.cache.get(doc.id)?.version === v3, 5_000, 'announcements after recovery');
  scheduler.paused = false;
  await writerStore.close();
});

t.test('a change nobody announced reaches every cache through the version check', async (t) => {
  if (children.size === 0) await startRedis();
  const prefix = `dptest:${randomBytes(4).toString('hex')}:`;
  const scheduler = pausableScheduler();
  const a = await startNode(t, prefix, scheduler);
  const b = await startNode(t, prefix, scheduler);

  const v1 = await a.store.putTenant(smallTenant('quiet', 'announced'));
  await until(() => a.cache.get('quiet')?.version === v1 && b.cache.get('quiet')?.version === v1, 5_000, 'the announced write');

  // Written around the store: no PUBLISH, as if every node missed the message.
  const v2 = v1 + 1;
  const silentDoc = smallTenant('quiet', 'never announced');
  await a.redis.hset(tenantKey(prefix, 'quiet'), 'v', String(v2), 'doc', JSON.stringify(silentDoc));
  await a.redis.hset(tenantIndexKey(prefix), 'quiet', String(v2));
  await a.redis.hset(tenantKey(prefix, 'added'), 'v', '7', 'doc', JSON.stringify(smallTenant('added')));
  await a.redis.hset(tenantIndexKey(prefix), 'added', '7');
  await a.redis.hset(globalKey(prefix), 'v', '9', 'doc', '{"blacklist":{"numbers":["+8617000000001"]}}');
  const ticks = scheduler.ticks;
  await until(() => [a, b].every((n) => n.cache.get('quiet')?.version === v2 && n.cache.get('added')?.version === 7 && n.cache.global().version === 9),
    5_000, 'the version check to find the silent changes');
  t.ok(scheduler.ticks > ticks, 'found by a version check');
  for (const node of [a, b]) {
    t.strictSame(node.cache.get('quiet')?.doc, silentDoc);
    t.equal(node.cache.global().compiled.blacklist.exact.size, 1);
  }

  await a.redis.hset(tenantIndexKey(prefix), 'added', '-8');
  await a.redis.hset(tenantKey(prefix, 'added'), 'v', '8');
  await a.redis.hdel(tenantKey(prefix, 'added'), 'doc');
  await until(() => [a, b].every((n) => n.cache.get('added') === undefined), 5_000, 'a silent deletion to be noticed');
  t.equal(a.log.count('warn') + b.log.count('warn'), 0, 'no outage logged');
});
