/**
 * WebhookStore in Redis, shared by every node.
 *
 * Layout, all under the tenant's hash tag (one slot per tenant, so the
 * two-key scripts below work on a Redis Cluster):
 *   `${prefix}webhooks:{<tenant>}`              hash: id → configuration JSON
 *   `${prefix}webhook-failures:{<tenant>}:<id>` list: failure JSON, newest first
 */
import type { Redis } from 'ioredis';
import { StoreError } from '../store-error.js';
import { assertTenantId } from '../tenant-record.js';
import {
  MAX_FAILURES_PER_WEBHOOK, MAX_WEBHOOKS_PER_TENANT, assertWebhookId, checkPut, decodeJson, encodeFailure,
  type WebhookConfig, type WebhookFailure, type WebhookStore,
} from '../webhook-store.js';
import { defineMultiKeyScript, isWrongTypeError, type MultiKeyScript } from './script.js';

export interface RedisWebhookStoreOptions {
  /** Command connection; the caller owns it. */
  redis: Redis;
  prefix: string;
}

export function webhooksKey(prefix: string, tenant: string): string {
  return `${prefix}webhooks:{${tenant}}`;
}

export function webhookFailuresKey(prefix: string, tenant: string, id: string): string {
  return `${prefix}webhook-failures:{${tenant}}:${id}`;
}

/**
 * Create or replace, refusing a new id beyond the per-tenant limit (checked
 * and written atomically, so racing creators cannot exceed it).
 * KEYS[1] hash; ARGV[1] id; ARGV[2] JSON; ARGV[3] limit. Returns 1, or 0 when full.
 */
const PUT_LUA = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`;

/** KEYS[1] hash, KEYS[2] failures; ARGV[1] id. Returns 1 when the webhook existed. */
const DELETE_LUA = `
redis.call('DEL', KEYS[2])
return redis.call('HDEL', KEYS[1], ARGV[1])
`;

/**
 * Pushes a failure only while the webhook exists, so a delivery finishing
 * after its webhook was deleted leaves nothing behind.
 * KEYS[1] hash, KEYS[2] failures; ARGV[1] id; ARGV[2] JSON; ARGV[3] how many to keep.
 */
const FAILURE_LUA = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
return 1
`;

export class RedisWebhookStore implements WebhookStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #put: MultiKeyScript;
  readonly #delete: MultiKeyScript;
  readonly #failure: MultiKeyScript;

  constructor(options: RedisWebhookStoreOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#put = defineMultiKeyScript(options.redis, 'dialplaneWebhookPut', PUT_LUA, 1);
    this.#delete = defineMultiKeyScript(options.redis, 'dialplaneWebhookDelete', DELETE_LUA, 2);
    this.#failure = defineMultiKeyScript(options.redis, 'dialplaneWebhookFailure', FAILURE_LUA, 2);
  }

  async list(tenant: string): Promise<WebhookConfig[]> {
    assertTenantId(tenant);
    let all: Record<string, string>;
    try {
      all = await this.#redis.hgetall(webhooksKey(this.#prefix, tenant));
    } catch (err) {
      if (isWrongTypeError(err)) return [];
      throw err;
    }
    return Object.keys(all).sort().flatMap((id) => { const c = decodeJson<WebhookConfig>(all[id]); return c ? [c] : []; });
  }

  async get(tenant: string, id: string): Promise<WebhookConfig | undefined> {
    assertTenantId(tenant);
    assertWebhookId(id);
    try {
      return decodeJson<WebhookConfig>(await this.#redis.hget(webhooksKey(this.#prefix, tenant), id));
    } catch (err) {
      if (isWrongTypeError(err)) return undefined;
      throw err;
    }
  }

  async put(tenant: string, config: WebhookConfig): Promise<void> {
    const json = checkPut(tenant, config);
    const done = await this.#put([webhooksKey(this.#prefix, tenant)], config.id, json, String(MAX_WEBHOOKS_PER_TENANT));
    if (done === 0) throw new StoreError('DP_STORE_BAD_WEBHOOK', `a tenant has at most ${MAX_WEBHOOKS_PER_TENANT} webhooks`);
    if (done !== 1) throw new StoreError('DP_STORE_BAD_REPLY', `webhook put: unexpected reply ${JSON.stringify(done)}`);
  }

  async delete(tenant: string, id: string): Promise<boolean> {
    assertTenantId(tenant);
    assertWebhookId(id);
    const n = await this.#delete([webhooksKey(this.#prefix, tenant), webhookFailuresKey(this.#prefix, tenant, id)], id);
    return n === 1;
  }

  async recordFailure(tenant: string, id: string, failure: WebhookFailure): Promise<void> {
    assertTenantId(tenant);
    assertWebhookId(id);
    const json = encodeFailure(failure);
    await this.#failure([webhooksKey(this.#prefix, tenant), webhookFailuresKey(this.#prefix, tenant, id)], id, json, String(MAX_FAILURES_PER_WEBHOOK));
  }

  async failures(tenant: string, id: string): Promise<WebhookFailure[]> {
    assertTenantId(tenant);
    assertWebhookId(id);
    let raw: string[];
    try {
      raw = await this.#redis.lrange(webhookFailuresKey(this.#prefix, tenant, id), 0, MAX_FAILURES_PER_WEBHOOK - 1);
    } catch (err) {
      if (isWrongTypeError(err)) return [];
      throw err;
    }
    return raw.flatMap((j) => { const f = decodeJson<WebhookFailure>(j); return f ? [f] : []; });
  }

  /** The connection belongs to the caller. */
  async close(): Promise<void> {
    return undefined;
  }
}
