/** RedisWebhookStore against a real Redis: the shared contract, then the key layout. */
import t from 'tap';
import { RedisWebhookStore, webhookFailuresKey, webhooksKey } from '../../src/store/redis/webhook-store.js';
import { failure, hook, webhookContract } from '../unit/store/webhook-contract.js';
import { deleteKeysWithPrefix, redisForFile } from '../helpers/redis-prefix.js';

const { redis, base } = await redisForFile(t, 'webhook');

let n = 0;
function make(): { store: RedisWebhookStore; prefix: string; cleanup: () => Promise<void> } {
  n++;
  const prefix = `${base}${n}:`;
  const store = new RedisWebhookStore({ redis, prefix });
  return { store, prefix, cleanup: async () => { await store.close(); await deleteKeysWithPrefix(redis, prefix); } };
}

t.test('contract', async (t) => {
  webhookContract(t, async () => make());
});

t.test('layout: a hash per tenant and a failure list per webhook, under the tenant\'s hash tag', async (t) => {
  const { store, prefix, cleanup } = make();
  t.teardown(cleanup);
  await store.put('租户', hook('crm'));
  await store.recordFailure('租户', 'crm', failure(1));
  t.strictSame(await redis.hkeys(webhooksKey(prefix, '租户')), ['crm']);
  t.equal(webhookFailuresKey(prefix, '租户', 'crm'), `${prefix}webhook-failures:{租户}:crm`);
  t.equal(await redis.llen(webhookFailuresKey(prefix, '租户', 'crm')), 1);
  await store.delete('租户', 'crm');
  t.equal(await redis.exists(webhookFailuresKey(prefix, '租户', 'crm')), 0, 'deleted with the webhook');
  await redis.hset(webhooksKey(prefix, 'odd'), 'bad', '{not json');
  t.strictSame(await store.list('odd'), [], 'an entry not written by the store is skipped');
});
