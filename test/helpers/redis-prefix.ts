/**
 * Redis for integration tests: a client on REDIS_URL (default localhost),
 * a per-run key prefix, and deletion of everything under it with SCAN +
 * UNLINK (never KEYS or FLUSHDB: the Redis may be shared).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createRedisClient, waitForRedisReady } from '../../src/store/redis/connect.js';

export const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A prefix no other run uses, e.g. `dptest:1234:ab12cd34:cdr:`. */
export function runPrefix(what: string): string {
  return `dptest:${process.pid}:${randomBytes(4).toString('hex')}:${what}:`;
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

export async function keysWithPrefix(redis: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 500);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<void> {
  // One UNLINK per key: multi-key deletes would be cross-slot on a Cluster.
  await Promise.all((await keysWithPrefix(redis, prefix)).map((key) => redis.unlink(key)));
}

/**
 * A client and a run prefix for one test file: at the file's end every key
 * under the prefix is deleted, and a key still there fails the file.
 */
export async function redisForFile(t: { teardown(fn: () => Promise<void>): void }, what: string): Promise<{ redis: Redis; base: string }> {
  const base = runPrefix(what);
  const redis = createRedisClient(redisUrl, { warn: () => undefined, info: () => undefined });
  t.teardown(async () => {
    try {
      await deleteKeysWithPrefix(redis, base);
      const left = await keysWithPrefix(redis, base);
      if (left.length > 0) throw new Error(`keys left behind: ${left.join(', ')}`);
    } finally {
      redis.disconnect();
    }
  });
  await waitForRedisReady(redis, 5_000);
  return { redis, base };
}
