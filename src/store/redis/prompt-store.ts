/**
 * PromptStore in Redis, shared by every node.
 *
 * Layout, all under the tenant's hash tag (one slot per tenant, so the
 * three-key scripts below work on a Redis Cluster):
 *   `${prefix}prompts:{<tenant>}`             hash: id → audio size in bytes (the index: listing, quotas)
 *   `${prefix}prompt:{<tenant>}:<id>`         hash: the description (PromptMeta fields as strings)
 *   `${prefix}prompt-audio:{<tenant>}:<id>`   string: the audio bytes as uploaded
 *
 * Every write is one Lua script: precondition, quota, description, audio
 * and index change together or not at all, and two nodes racing on one
 * prompt serialise in Redis. Reads of audio take description and bytes in
 * one MULTI, so the version handed out names the bytes handed out.
 *
 * Memory: audio lives in Redis memory (at most MAX_PROMPT_BYTES_PER_TENANT
 * per tenant); size maxmemory accordingly.
 */
import type { Redis } from 'ioredis';
import { StoreError } from '../store-error.js';
import {
  DEFAULT_PROMPT_LIMITS, PromptConflict, asPromptMeta, assertPromptId, assertPromptTenant, bytesQuotaMessage, checkListOptions, compareIds,
  countQuotaMessage, preparePut, type PromptDescription, type PromptLimits, type PromptMeta, type PromptPage, type PromptPutOptions, type PromptStore,
} from '../prompt-store.js';
import { defineMultiKeyScript, isWrongTypeError, type MultiKeyScript } from './script.js';

export interface RedisPromptStoreOptions {
  /** Command connection; the caller owns it. */
  redis: Redis;
  prefix: string;
  /** Clock of `updatedAt`. Default Date.now. */
  now?: () => number;
  /** Default DEFAULT_PROMPT_LIMITS. */
  limits?: PromptLimits;
}

export function promptIndexKey(prefix: string, tenant: string): string {
  return `${prefix}prompts:{${tenant}}`;
}

export function promptMetaKey(prefix: string, tenant: string, id: string): string {
  return `${prefix}prompt:{${tenant}}:${id}`;
}

export function promptAudioKey(prefix: string, tenant: string, id: string): string {
  return `${prefix}prompt-audio:{${tenant}}:${id}`;
}

/**
 * KEYS[1] index, KEYS[2] description, KEYS[3] audio.
 * ARGV[1] id; ARGV[2] precondition: '' none, 'absent', or the expected version;
 * ARGV[3] new size; ARGV[4] most prompts; ARGV[5] most bytes; ARGV[6] audio;
 * ARGV[7..] description field, value, ...
 * Returns {1, previous version or ''}, {0, current version or ''} when the
 * precondition fails, {-1, 'count'|'bytes', total} when over quota.
 */
const PUT_LUA = `
local current = redis.call('HGET', KEYS[2], 'version')
if ARGV[2] == 'absent' then
  if current then return {0, current} end
elseif ARGV[2] ~= '' and current ~= ARGV[2] then
  return {0, current or ''}
end
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then return {-1, 'count', 0} end
local total = tonumber(ARGV[3]) - (tonumber(old) or 0)
for _, size in ipairs(redis.call('HVALS', KEYS[1])) do total = total + (tonumber(size) or 0) end
if total > tonumber(ARGV[5]) then return {-1, 'bytes', total} end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 7))
redis.call('SET', KEYS[3], ARGV[6])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return {1, current or ''}
`;

/**
 * KEYS as PUT; ARGV[1] id, ARGV[2] expected version or ''.
 * Returns 1 deleted, 0 none, {-1, current} on a version mismatch.
 * Strays of an absent prompt (an audio key or index entry without
 * description) are cleaned up on the way.
 */
const DELETE_LUA = `
local current = redis.call('HGET', KEYS[2], 'version')
if not current then
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
if ARGV[2] ~= '' and current ~= ARGV[2] then return {-1, current} end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
`;

export class RedisPromptStore implements PromptStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #now: () => number;
  readonly #limits: PromptLimits;
  readonly #put: MultiKeyScript;
  readonly #delete: MultiKeyScript;

  constructor(options: RedisPromptStoreOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#now = options.now ?? Date.now;
    this.#limits = options.limits ?? DEFAULT_PROMPT_LIMITS;
    this.#put = defineMultiKeyScript(options.redis, 'dialplanePromptPut', PUT_LUA, 3);
    this.#delete = defineMultiKeyScript(options.redis, 'dialplanePromptDelete', DELETE_LUA, 3);
  }

  #keys(tenant: string, id: string): [string, string, string] {
    return [promptIndexKey(this.#prefix, tenant), promptMetaKey(this.#prefix, tenant, id), promptAudioKey(this.#prefix, tenant, id)];
  }

  async put(tenant: string, id: string, prompt: { audio: Uint8Array; meta: PromptDescription }, opts: PromptPutOptions = {}): Promise<{ meta: PromptMeta; created: boolean }> {
    const meta = preparePut(tenant, id, prompt, this.#now());
    const precondition = opts.ifAbsent ? 'absent' : opts.ifVersion ?? '';
    const fields = Object.entries(meta).flatMap(([k, v]) => [k, String(v)]);
    const audio = Buffer.isBuffer(prompt.audio) ? prompt.audio : Buffer.from(prompt.audio);
    const reply = await this.#put(this.#keys(tenant, id), id, precondition, String(meta.bytes),
      String(this.#limits.prompts), String(this.#limits.bytes), audio, ...fields);
    if (!Array.isArray(reply)) throw new StoreError('DP_STORE_BAD_REPLY', `prompt put: unexpected reply ${JSON.stringify(reply)}`);
    const [status, detail, total] = reply as [unknown, unknown, unknown];
    if (status === 1) return { meta, created: detail === '' };
    if (status === 0) throw new PromptConflict(id, typeof detail === 'string' && detail !== '' ? detail : undefined);
    if (status === -1 && detail === 'count') throw new StoreError('DP_STORE_PROMPT_QUOTA', countQuotaMessage(this.#limits));
    if (status === -1 && detail === 'bytes') throw new StoreError('DP_STORE_PROMPT_QUOTA', bytesQuotaMessage(this.#limits, Number(total)));
    throw new StoreError('DP_STORE_BAD_REPLY', `prompt put: unexpected reply ${JSON.stringify(reply)}`);
  }

  async getMeta(tenant: string, id: string): Promise<PromptMeta | undefined> {
    assertPromptTenant(tenant);
    assertPromptId(id);
    try {
      return asPromptMeta(await this.#redis.hgetall(promptMetaKey(this.#prefix, tenant, id)), id);
    } catch (err) {
      if (isWrongTypeError(err)) return undefined;
      throw err;
    }
  }

  async getAudio(tenant: string, id: string): Promise<{ meta: PromptMeta; audio: Buffer } | undefined> {
    assertPromptTenant(tenant);
    assertPromptId(id);
    const [, meta, audio] = this.#keys(tenant, id);
    const replies = await this.#redis.multi().hgetall(meta).getBuffer(audio).exec();
    if (replies === null) throw new StoreError('DP_STORE_BAD_REPLY', 'prompt read: transaction aborted');
    const [[metaErr, metaValue] = [null, null], [audioErr, audioValue] = [null, null]] = replies;
    if (metaErr || audioErr) {
      if (isWrongTypeError(metaErr) || isWrongTypeError(audioErr)) return undefined;
      throw metaErr ?? audioErr;
    }
    const m = asPromptMeta(metaValue, id);
    return m && Buffer.isBuffer(audioValue) && audioValue.length === m.bytes ? { meta: m, audio: audioValue } : undefined;
  }

  async list(tenant: string, opts: { limit: number; after?: string }): Promise<PromptPage> {
    assertPromptTenant(tenant);
    checkListOptions(opts);
    let ids: string[];
    try {
      ids = await this.#redis.hkeys(promptIndexKey(this.#prefix, tenant));
    } catch (err) {
      if (isWrongTypeError(err)) return { items: [] };
      throw err;
    }
    // At most MAX_PROMPTS_PER_TENANT ids: sorting them here is cheaper than keeping a second, sorted index.
    const rest = ids.sort(compareIds).filter((id) => opts.after === undefined || compareIds(id, opts.after) > 0);
    const page = rest.slice(0, opts.limit);
    const pipeline = this.#redis.pipeline();
    for (const id of page) pipeline.hgetall(promptMetaKey(this.#prefix, tenant, id));
    const replies = page.length > 0 ? (await pipeline.exec()) ?? [] : [];
    const items = page.flatMap((id, i) => {
      const [err, value] = replies[i] ?? [null, null];
      const m = err ? undefined : asPromptMeta(value, id);
      return m ? [m] : [];
    });
    const last = page[page.length - 1];
    return rest.length > opts.limit && last !== undefined ? { items, nextAfter: last } : { items };
  }

  async delete(tenant: string, id: string, opts: { ifVersion?: string } = {}): Promise<boolean> {
    assertPromptTenant(tenant);
    assertPromptId(id);
    const reply = await this.#delete(this.#keys(tenant, id), id, opts.ifVersion ?? '');
    if (reply === 1) return true;
    if (reply === 0) return false;
    if (Array.isArray(reply) && reply[0] === -1) throw new PromptConflict(id, String(reply[1]));
    throw new StoreError('DP_STORE_BAD_REPLY', `prompt delete: unexpected reply ${JSON.stringify(reply)}`);
  }

  async deleteTenant(tenant: string): Promise<number> {
    assertPromptTenant(tenant);
    const index = promptIndexKey(this.#prefix, tenant);
    let ids: string[];
    try {
      ids = await this.#redis.hkeys(index);
    } catch (err) {
      if (isWrongTypeError(err)) return 0;
      throw err;
    }
    let n = 0;
    // One script per prompt: each removal is whole, and a put racing the tenant's deletion is removed or kept whole.
    for (const id of ids) if ((await this.#delete(this.#keys(tenant, id), id, '')) === 1) n++;
    return n;
  }

  /** The connection belongs to the caller. */
  async close(): Promise<void> {
    return undefined;
  }
}
