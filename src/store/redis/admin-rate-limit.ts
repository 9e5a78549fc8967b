/**
 * Where the admin API's rate-limit counters live when the installation runs
 * on Redis: one budget per credential for the whole cluster, not one per
 * node (with N nodes behind a load balancer a per-process limit would let a
 * key make N times its budget, and failed guesses N times as many tries).
 *
 * The counting itself is @fastify/rate-limit's (its RedisStore: one INCR +
 * PEXPIRE script per request). This module only decides the key namespace,
 * `<prefix>admin-rate:<credential>` (`operator`, `key:<id>`, `ip:<address>`),
 * and hands the client over as an opaque value: src/admin must not import
 * ioredis, and src/store is where Redis key names are decided.
 *
 * The client is the store's own (fail-fast: no offline queue, 1 s command
 * timeout; see connect.ts), so during a Redis outage the limiter's command
 * fails within a second instead of hanging the request; what the admin API
 * then does is its decision (app.ts: it lets the request through).
 */
import type { Redis } from 'ioredis';

export interface SharedRateLimit {
  /** An ioredis client, for @fastify/rate-limit's `redis` option. Opaque above src/store. */
  readonly redis: unknown;
  /** Key prefix of the counters. */
  readonly nameSpace: string;
}

export function adminRateLimitKeyPrefix(prefix: string): string {
  return `${prefix}admin-rate:`;
}

export function adminRateLimitBackend(redis: Redis, prefix: string): SharedRateLimit {
  return { redis, nameSpace: adminRateLimitKeyPrefix(prefix) };
}
