/**
 * ApiKeyStore in Redis, shared by every node.
 *
 * Layout:
 *   `${prefix}apikey:{<id>}`        string: the record as JSON.
 *   `${prefix}apikeys:{<tenant>}`   set of the tenant's key ids.
 *
 * The two keys live in different slots (a Cluster rejects a command or
 * script touching both), so the order of the two writes is chosen to keep
 * the one invariant that matters: a record that exists is in its tenant's
 * set, so listing (and revoking everything at tenant deletion) finds it.
 * Create adds to the set first, then SET NX (undone if the id was taken);
 * delete removes the record first, then the set member. A crash between
 * the two steps leaves only a set member without record, which listing
 * skips and removes.
 */
import type { Redis } from 'ioredis';
import { asApiKeyRecord, type ApiKeyRecord, type ApiKeyStore } from '../api-key-store.js';

export interface RedisApiKeyStoreOptions {
  /** The caller owns the connection (close() leaves it open). */
  redis: Redis;
  prefix: string;
}

export function apiKeyKey(prefix: string, id: string): string {
  return `${prefix}apikey:{${id}}`;
}

export function tenantApiKeysKey(prefix: string, tenant: string): string {
  return `${prefix}apikeys:{${tenant}}`;
}

export class RedisApiKeyStore implements ApiKeyStore {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(options: RedisApiKeyStoreOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
  }

  async get(id: string): Promise<ApiKeyRecord | undefined> {
    const json = await this.#redis.get(apiKeyKey(this.#prefix, id));
    return json === null ? undefined : decode(json, id);
  }

  async create(record: ApiKeyRecord): Promise<boolean> {
    const setKey = tenantApiKeysKey(this.#prefix, record.tenant);
    await this.#redis.sadd(setKey, record.id);
    const ok = await this.#redis.set(apiKeyKey(this.#prefix, record.id), JSON.stringify(record), 'NX');
    if (ok === null) {
      // Taken: undo our set member unless the existing record is of this tenant.
      const existing = await this.get(record.id);
      if (existing?.tenant !== record.tenant) await this.#redis.srem(setKey, record.id);
      return false;
    }
    return true;
  }

  async list(tenant: string): Promise<ApiKeyRecord[]> {
    const setKey = tenantApiKeysKey(this.#prefix, tenant);
    const ids = await this.#redis.smembers(setKey);
    const out: ApiKeyRecord[] = [];
    await Promise.all(ids.map(async (id) => {
      const rec = await this.get(id);
      if (rec?.tenant === tenant) out.push(rec);
      // A member without any record was left by an interrupted create or delete;
      // a record that cannot be decoded stays listed in the set, so a tenant
      // deletion still removes it.
      else if (rec === undefined && (await this.#redis.exists(apiKeyKey(this.#prefix, id))) === 0) await this.#redis.srem(setKey, id);
    }));
    return out.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  async delete(id: string): Promise<boolean> {
    const rec = await this.get(id);
    const removed = await this.#redis.del(apiKeyKey(this.#prefix, id));
    if (rec) await this.#redis.srem(tenantApiKeysKey(this.#prefix, rec.tenant), id);
    return removed > 0;
  }

  async deleteTenant(tenant: string): Promise<number> {
    const setKey = tenantApiKeysKey(this.#prefix, tenant);
    const ids = await this.#redis.smembers(setKey);
    let n = 0;
    for (const id of ids) {
      const rec = await this.get(id);
      // Undecodable records in the tenant's set go too; records of another tenant are left alone.
      if ((rec === undefined || rec.tenant === tenant) && (await this.#redis.del(apiKeyKey(this.#prefix, id))) > 0 && rec) n++;
      await this.#redis.srem(setKey, id);
    }
    return n;
  }

  async close(): Promise<void> {
    // The connection belongs to the caller.
  }
}

/** A value someone wrote around the store is treated as no key (never as a key with guessed fields). */
function decode(json: string, id: string): ApiKeyRecord | undefined {
  try {
    const rec = asApiKeyRecord(JSON.parse(json));
    return rec?.id === id ? rec : undefined;
  } catch {
    return undefined;
  }
}
