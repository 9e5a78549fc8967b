/** RedisPromptStore against a real Redis: the shared contract, then the key layout and binary safety. */
import t from 'tap';
import { RedisPromptStore, promptAudioKey, promptIndexKey, promptMetaKey } from '../../src/store/redis/prompt-store.js';
import { PROMPT_NOW, TEST_LIMITS, audioBytes, described, promptContract } from '../unit/store/prompt-contract.js';
import { deleteKeysWithPrefix, keysWithPrefix, redisForFile } from '../helpers/redis-prefix.js';

const { redis, base } = await redisForFile(t, 'prompt');

let n = 0;
function make(): { store: RedisPromptStore; prefix: string; cleanup: () => Promise<void> } {
  n++;
  const prefix = `${base}${n}:`;
  const store = new RedisPromptStore({ redis, prefix, now: () => PROMPT_NOW, limits: TEST_LIMITS });
  return { store, prefix, cleanup: async () => { await store.close(); await deleteKeysWithPrefix(redis, prefix); } };
}

t.test('contract', async (t) => {
  promptContract(t, async () => make());
});

t.test('layout: index, description and audio under the tenant\'s hash tag; audio stored as raw bytes', async (t) => {
  const { store, prefix, cleanup } = make();
  t.teardown(cleanup);
  const audio = audioBytes(4, 1000);
  const { meta } = await store.put('租户', 'welcome', { audio, meta: described({ name: 'hi' }) });
  t.equal(promptIndexKey(prefix, '租户'), `${prefix}prompts:{租户}`);
  t.equal(promptMetaKey(prefix, '租户', 'welcome'), `${prefix}prompt:{租户}:welcome`);
  t.equal(promptAudioKey(prefix, '租户', 'welcome'), `${prefix}prompt-audio:{租户}:welcome`);
  t.strictSame(await redis.hgetall(promptIndexKey(prefix, '租户')), { welcome: '1000' });
  t.equal(await redis.hget(promptMetaKey(prefix, '租户', 'welcome'), 'version'), meta.version);
  t.equal(await redis.strlen(promptAudioKey(prefix, '租户', 'welcome')), 1000, 'one byte per byte: no text encoding on the way');
  t.ok((await redis.getBuffer(promptAudioKey(prefix, '租户', 'welcome')))?.equals(audio));
  await store.delete('租户', 'welcome');
  t.strictSame(await keysWithPrefix(redis, prefix), [], 'nothing left after a delete');
});

t.test('values written around the store are no prompt', async (t) => {
  const { store, prefix, cleanup } = make();
  t.teardown(cleanup);
  await redis.hset(promptMetaKey(prefix, 'odd', 'broken'), 'id', 'broken', 'version', 'nope');
  await redis.hset(promptIndexKey(prefix, 'odd'), 'broken', '5');
  await redis.set(promptAudioKey(prefix, 'odd', 'broken'), 'hello');
  t.equal(await store.getMeta('odd', 'broken'), undefined);
  t.equal(await store.getAudio('odd', 'broken'), undefined);
  t.strictSame(await store.list('odd', { limit: 10 }), { items: [] });
  await redis.set(promptMetaKey(prefix, 'odd', 'wrongtype'), 'a string, not a hash');
  t.equal(await store.getMeta('odd', 'wrongtype'), undefined);
  t.equal(await store.delete('odd', 'broken'), true, 'an unreadable description can still be deleted');
  t.equal(await redis.exists(promptAudioKey(prefix, 'odd', 'broken')), 0);
  await redis.hset(promptIndexKey(prefix, 'odd'), 'stray', '5');
  await redis.set(promptAudioKey(prefix, 'odd', 'stray'), 'hello');
  t.equal(await store.delete('odd', 'stray'), false, 'no description: nothing to delete...');
  t.equal(await redis.exists(promptAudioKey(prefix, 'odd', 'stray')), 0, '...but the strays are cleaned up');
  t.equal(await redis.hexists(promptIndexKey(prefix, 'odd'), 'stray'), 0);
});
