/**
 * RedisNodeBus against a real Redis: one node asks, the others answer over
 * pub/sub; the asker waits exactly for the nodes that received the question,
 * or for its timeout when one does not answer. Pub/sub leaves no keys.
 */
import t from 'tap';
import { createRedisClient, waitForRedisReady } from '../../src/store/redis/connect.js';
import { RedisNodeBus } from '../../src/store/redis/node-bus.js';
import { keysWithPrefix, redisUrl, runPrefix } from '../helpers/redis-prefix.js';

const prefix = runPrefix('nodes');
const redis = createRedisClient(redisUrl, { warn: () => undefined, info: () => undefined });
t.teardown(async () => {
  const left = await keysWithPrefix(redis, prefix);
  redis.disconnect();
  if (left.length > 0) throw new Error(`keys left behind: ${left.join(', ')}`);
});
await waitForRedisReady(redis, 5_000);

const warnings: string[] = [];
const log = { warn: (_o: object, msg?: string) => { warnings.push(msg ?? ''); } };

async function node(nodeId: string, handler: (op: string, args: unknown) => unknown, timeoutMs = 1000, p = prefix): Promise<RedisNodeBus> {
  const bus = new RedisNodeBus({ redis, prefix: p, nodeId, handler, timeoutMs, log });
  await bus.start();
  t.teardown(() => bus.stop());
  return bus;
}

t.test('every other node answers; the asker does not answer itself; the answer comes as soon as all have', async (t) => {
  const asked: string[] = [];
  const a = await node('a', (op) => { asked.push(`a:${op}`); return ['call-a']; });
  await node('b', (op, args) => { asked.push(`b:${op}`); return { calls: ['call-b'], args }; });
  await node('c', (op) => { asked.push(`c:${op}`); return ['call-c']; });
  const t0 = Date.now();
  const r = await a.ask('calls', { tenant: 'acme' });
  t.ok(Date.now() - t0 < 900, 'did not wait for the timeout');
  t.equal(r.missing, 0);
  t.same(r.values.length, 2);
  t.same(r.values.find((v) => !Array.isArray(v)), { calls: ['call-b'], args: { tenant: 'acme' } }, 'arguments travel as JSON');
  t.ok(r.values.some((v) => Array.isArray(v) && v[0] === 'call-c'));
  t.same(asked.sort(), ['b:calls', 'c:calls'], 'a node never answers its own question');
});

t.test('a node that throws is left out; one that does not answer is counted missing after the timeout', async (t) => {
  const p = runPrefix('nodes2');
  const a = await node('a', () => 'a', 300, p);
  await node('thrower', () => { throw new Error('boom'); }, 300, p);
  await node('stuck', () => new Promise(() => undefined), 300, p);
  await node('fine', async () => 'fine', 300, p);
  const t0 = Date.now();
  const r = await a.ask('calls', null);
  const waited = Date.now() - t0;
  t.same(r.values, ['fine'], 'only the good answer');
  t.equal(r.missing, 1, 'the stuck node is missing (the thrower did answer, with an error)');
  t.ok(waited >= 250, `waited for the timeout (${waited} ms)`);
});

t.test('alone: nobody else to ask, an immediate empty answer', async (t) => {
  const a = await node('alone', () => 'x', 5000, runPrefix('nodes3'));
  const t0 = Date.now();
  t.same(await a.ask('calls', null), { values: [], missing: 0 });
  t.ok(Date.now() - t0 < 1000);
});
