/**
 * TenantStore in Redis, shared by every node of a cluster (Redis ≥ 6.2,
 * standalone or Cluster).
 *
 * Layout:
 *
 *   `${prefix}tenant:{<id>}`  hash: `v` = version (decimal), `doc` = the
 *                             document as the JSON text the writer produced.
 *                             A deleted tenant keeps `v` without `doc` (a
 *                             tombstone of a few bytes).
 *   `${prefix}tenants`        hash, the version index: id → `V` for a live
 *                             tenant, `-V` for a deleted one; what
 *                             `tenantVersions` reads.
 *   `${prefix}global`         hash like a tenant key, for the global document.
 *   `${prefix}rr:{<tenant>}:<rest>`  counter (INCR) for the engine's key
 *                             `rr:<tenant>:<rest>`; any other key `k` is
 *                             `${prefix}ctr:{k}`.
 *   `${prefix}config`         pub/sub channel of change announcements.
 *
 * A write is one Lua script on the document's key: compare `ifVersion`,
 * write the document and its new version, and PUBLISH the announcement.
 * Publishing inside the script means an announcement goes out if and only
 * if the write committed, whatever happens to the writer afterwards.
 *
 * Versions are max(previous + 1, Redis server time in µs). The tombstone
 * keeps "previous" across a delete, and the clock keeps versions growing
 * even if the key itself is lost (a Redis restarted without persistence):
 * a writer or cache holding a version from before can never mistake a newer
 * document for the one it read (ABA). µs since 1970 stay below 2^53 until
 * the year 2255.
 *
 * The index and Redis Cluster: a script touching both the tenant key and the
 * one index key would be cross-slot, which Cluster rejects, and giving every
 * tenant the index's hash tag would put all documents in one slot. So, as in
 * location-store.ts, the index is updated by a second script after the
 * write, and it is built to tolerate that:
 *   - an entry only ever moves to a higher version, and deletions leave
 *     `-V`, so index updates of racing writers arriving out of order cannot
 *     regress it or resurrect a deleted tenant;
 *   - readers of documents never use it; only the cache's periodic check does.
 * The one gap: if the writer's connection drops between its write and the
 * index update, the index lags until that tenant's next write. The write
 * itself was announced by the script, so only a node that also missed that
 * announcement stays behind. The writer is told (DP_STORE_INDEX_LAG).
 *
 * Counters carry the tenant's hash tag, so a tenant's counters and document
 * share a slot while tenants spread over the cluster; INCR is atomic.
 */
import type { Redis } from 'ioredis';
import type { GlobalDocument, TenantDocument } from '../../routing/model.js';
import { StoreError } from '../store-error.js';
import {
  assertCounterKey, assertTenantId, decodeDocument, encodeDocument, isVersion, parseConfigChange,
} from '../tenant-record.js';
import {
  TenantStoreConflict,
  type ConfigChange, type TenantStore, type Versioned, type WriteOptions,
} from '../tenant-store.js';
import { defineSingleKeyScript, isWrongTypeError, type SingleKeyScript } from './script.js';

export interface RedisTenantStoreOptions {
  /** Command connection; the caller owns it (close() leaves it open). */
  redis: Redis;
  /** Namespace for every key and the channel, e.g. `dp:`. */
  prefix: string;
  /** Receives exceptions thrown by watch listeners. Default: `process.emitWarning`. */
  onListenerError?: (err: unknown) => void;
}

export function tenantKey(prefix: string, id: string): string {
  return `${prefix}tenant:{${id}}`;
}

export function tenantIndexKey(prefix: string): string {
  return `${prefix}tenants`;
}

export function globalKey(prefix: string): string {
  return `${prefix}global`;
}

export function configChannel(prefix: string): string {
  return `${prefix}config`;
}

/**
 * `rr:<tenant>:<rest>` → `${prefix}rr:{<tenant>}:<rest>`; anything else →
 * `${prefix}ctr:{<key>}`. The tenant part stops at the first `:` after
 * `rr:`, so the mapping is one-to-one.
 */
export function counterKey(prefix: string, key: string): string {
  if (key.startsWith('rr:')) {
    const end = key.indexOf(':', 3);
    return end < 0 ? `${prefix}rr:{${key.slice(3)}}` : `${prefix}rr:{${key.slice(3, end)}}${key.slice(end)}`;
  }
  return `${prefix}ctr:{${key}}`;
}

/**
 * Conditional write of one versioned document.
 *
 * The stored version is read with a fixed pattern, so the script and `get`
 * agree on any value, corrupt ones included: a `v` that is not a plain
 * decimal below 2^53, or a key of another type, counts as absent (version
 * 0), and the next write replaces it. The document is stored as the exact
 * text the client sent (cjson would re-encode it: `[]` → `{}`, long numbers
 * rounded).
 *
 * KEYS[1] the document's key
 * ARGV[1] expected version, decimal, or '' for an unconditional write
 * ARGV[2] the document's JSON text, or '' to delete
 * ARGV[3] the channel to announce on
 * ARGV[4], ARGV[5] the announcement's text before and after the version
 * Returns {1, new version} when written, {0, actual version} on a version
 * mismatch, {2, 0} when deleting a document that does not exist.
 */
const WRITE_LUA = `
local stored = 0
local live = false
local keyType = redis.call('TYPE', KEYS[1])['ok']
if keyType == 'hash' then
  local v = redis.call('HGET', KEYS[1], 'v')
  if v and #v <= 16 and string.match(v, '^%d+$') then
    local n = tonumber(v)
    if n <= 9007199254740991 then stored = n end
  end
  live = stored > 0 and redis.call('HEXISTS', KEYS[1], 'doc') == 1
end
local actual = 0
if live then actual = stored end
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= actual then
  return {0, actual}
end
if ARGV[2] == '' and not live then
  return {2, 0}
end
local t = redis.call('TIME')
local version = tonumber(t[1]) * 1000000 + tonumber(t[2])
if version <= stored then version = stored + 1 end
local vs = string.format('%.0f', version)
redis.call('DEL', KEYS[1])
if ARGV[2] == '' then
  redis.call('HSET', KEYS[1], 'v', vs)
else
  redis.call('HSET', KEYS[1], 'v', vs, 'doc', ARGV[2])
end
redis.call('PUBLISH', ARGV[3], ARGV[4] .. vs .. ARGV[5])
return {1, version}
`;

/**
 * Raises one entry of the version index. KEYS[1] the index, ARGV[1] the
 * tenant id, ARGV[2] its version, ARGV[3] '1' for a deletion (stored as
 * `-V`). An entry never moves to a lower or equal version. Returns 1 when
 * changed, 0 when the index already had this or a newer version.
 */
const INDEX_LUA = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local digits = string.match(old, '^%-?(%d+)$')
  if digits and #digits <= 16 and tonumber(digits) >= tonumber(ARGV[2]) then return 0 end
end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], ARGV[1], '-' .. ARGV[2])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 1
`;

interface Subscription {
  readonly listener: (change: ConfigChange) => void;
}

export class RedisTenantStore implements TenantStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #indexKey: string;
  readonly #globalKey: string;
  readonly #channel: string;
  readonly #write: SingleKeyScript;
  readonly #index: SingleKeyScript;
  readonly #onListenerError: (err: unknown) => void;
  readonly #subscriptions = new Set<Subscription>();
  #subscriber: Redis | undefined;
  /** Settles when the subscription is (again) active; replaced when the subscriber connection drops. */
  #watching: Deferred | undefined;
  #closed = false;

  constructor(options: RedisTenantStoreOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#indexKey = tenantIndexKey(options.prefix);
    this.#globalKey = globalKey(options.prefix);
    this.#channel = configChannel(options.prefix);
    this.#onListenerError = options.onListenerError ?? reportListenerError;
    this.#write = defineSingleKeyScript(options.redis, 'dialplaneVersionedWrite', WRITE_LUA);
    this.#index = defineSingleKeyScript(options.redis, 'dialplaneTenantIndex', INDEX_LUA);
  }

  async getTenant(id: string): Promise<Versioned<TenantDocument> | undefined> {
    assertTenantId(id);
    const stored = await this.#read(tenantKey(this.#prefix, id));
    if (stored === undefined) return undefined;
    return { version: stored.version, doc: decodeDocument(`tenant ${id}`, stored.version, stored.json, id) as unknown as TenantDocument };
  }

  async putTenant(doc: TenantDocument, opts: WriteOptions = {}): Promise<number> {
    const json = encodeDocument('tenant document', doc);
    const id = doc.id;
    assertTenantId(id);
    const what = `tenant ${id}`;
    const [status, version] = await this.#writeDocument(tenantKey(this.#prefix, id), what, opts.ifVersion, json,
      `{"kind":"tenant","tenant":${JSON.stringify(id)},"version":`, '}');
    if (status === 0) throw new TenantStoreConflict(what, opts.ifVersion ?? 0, version);
    await this.#raiseIndex(id, version, false);
    return version;
  }

  async deleteTenant(id: string, opts: WriteOptions = {}): Promise<boolean> {
    assertTenantId(id);
    const what = `tenant ${id}`;
    const [status, version] = await this.#writeDocument(tenantKey(this.#prefix, id), what, opts.ifVersion, '',
      `{"kind":"tenant","tenant":${JSON.stringify(id)},"version":`, ',"deleted":true}');
    if (status === 0) throw new TenantStoreConflict(what, opts.ifVersion ?? 0, version);
    if (status === 2) return false;
    await this.#raiseIndex(id, version, true);
    return true;
  }

  async tenantVersions(): Promise<Map<string, number>> {
    let entries: Record<string, string>;
    try {
      entries = await this.#redis.hgetall(this.#indexKey);
    } catch (err) {
      if (isWrongTypeError(err)) return new Map();
      throw err;
    }
    const versions = new Map<string, number>();
    for (const [id, raw] of Object.entries(entries)) {
      // Tombstones (`-V`) and anything not written by this store are skipped.
      const version = parseVersion(raw);
      if (version > 0) versions.set(id, version);
    }
    return versions;
  }

  async getGlobal(): Promise<Versioned<GlobalDocument>> {
    const stored = await this.#read(this.#globalKey);
    if (stored === undefined) return { version: 0, doc: {} };
    return { version: stored.version, doc: decodeDocument('global document', stored.version, stored.json) as GlobalDocument };
  }

  async globalVersion(): Promise<number> {
    try {
      const [v, hasDoc] = await Promise.all([this.#redis.hget(this.#globalKey, 'v'), this.#redis.hexists(this.#globalKey, 'doc')]);
      return hasDoc === 1 ? parseVersion(v) : 0;
    } catch (err) {
      if (isWrongTypeError(err)) return 0;
      throw err;
    }
  }

  async putGlobal(doc: GlobalDocument, opts: WriteOptions = {}): Promise<number> {
    const json = encodeDocument('global document', doc);
    const what = 'global document';
    const [status, version] = await this.#writeDocument(this.#globalKey, what, opts.ifVersion, json, '{"kind":"global","version":', '}');
    if (status === 0) throw new TenantStoreConflict(what, opts.ifVersion ?? 0, version);
    return version;
  }

  async incrCounter(key: string): Promise<number> {
    assertCounterKey(key);
    return this.#redis.incr(counterKey(this.#prefix, key));
  }

  /**
   * Announcements from every node, this one included, through a subscriber
   * connection of its own (a subscribed connection can run nothing else),
   * opened at the first call. Listeners are called from the subscriber's
   * socket events, never inside a writer's stack.
   */
  watch(listener: (change: ConfigChange) => void): () => void {
    const subscription: Subscription = { listener };
    if (this.#closed) return () => undefined;
    this.#subscriptions.add(subscription);
    this.#ensureSubscriber();
    return () => {
      this.#subscriptions.delete(subscription);
    };
  }

  /**
   * Resolves once the subscription is active, so announcements of writes
   * made from now on reach `watch` listeners; after the subscriber
   * connection dropped, once it is subscribed again. Resolves at once when
   * nothing watches or the store is closed.
   */
  whenWatching(): Promise<void> {
    return this.#watching?.promise ?? Promise.resolve();
  }

  /** Closes the subscriber connection. The command connection belongs to the caller. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#subscriptions.clear();
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    this.#watching?.resolve();
    subscriber?.disconnect();
  }

  #ensureSubscriber(): void {
    if (this.#subscriber !== undefined) return;
    const subscriber = this.#redis.duplicate({
      connectionName: 'dialplane-config-watch',
      // Unlike commands on the call path, the subscriber waits for Redis
      // however long it is away, reconnecting with the client's back-off.
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      // ioredis arms commandTimeout even for queued commands.
      commandTimeout: undefined,
      // Subscribing is done here on every `ready`, rather than by ioredis's
      // own resubscription, so `whenWatching` knows when it is active again.
      // Announcements published between a reconnect and the new SUBSCRIBE
      // are lost, like those during the outage: TenantCache's version check
      // is what heals them.
      autoResubscribe: false,
    });
    this.#subscriber = subscriber;
    this.#watching = deferred();
    // Connection errors are expected during an outage; the command
    // connection logs them (connect.ts) and TenantCache reports the outage.
    // Without a listener ioredis would print every reconnect attempt.
    subscriber.on('error', () => undefined);
    subscriber.on('close', () => {
      if (this.#subscriber === subscriber && this.#watching?.settled === true) this.#watching = deferred();
    });
    subscriber.on('ready', () => {
      const watching = this.#watching;
      subscriber.subscribe(this.#channel).then(
        () => { if (this.#subscriber === subscriber) watching?.resolve(); },
        // The connection dropped again before the reply; the next `ready` retries.
        () => undefined,
      );
    });
    subscriber.on('message', (channel: unknown, message: unknown) => {
      if (channel === this.#channel) this.#dispatch(message);
    });
  }

  #dispatch(message: unknown): void {
    // Anything on the channel that is not an announcement is ignored.
    const change = parseConfigChange(message);
    if (change === undefined) return;
    const frozen = Object.freeze(change);
    for (const subscription of [...this.#subscriptions]) {
      if (!this.#subscriptions.has(subscription)) continue;
      try {
        subscription.listener(frozen);
      } catch (err) {
        this.#onListenerError(err);
      }
    }
  }

  /** Version and JSON text of a document key; undefined when absent, deleted or unreadable as a version. */
  async #read(key: string): Promise<{ version: number; json: string } | undefined> {
    let v: string | null | undefined;
    let json: string | null | undefined;
    try {
      [v, json] = await this.#redis.hmget(key, 'v', 'doc');
    } catch (err) {
      // A key of another type reads as absent, as the write script sees it.
      if (isWrongTypeError(err)) return undefined;
      throw err;
    }
    const version = parseVersion(v);
    if (version === 0 || json === null || json === undefined) return undefined;
    return { version, json };
  }

  async #writeDocument(
    key: string, what: string, ifVersion: number | undefined, json: string, before: string, after: string,
  ): Promise<[status: 0 | 1 | 2, version: number]> {
    // A version no store hands out can never match; '-1' never equals a stored one.
    const expected = ifVersion === undefined ? '' : Number.isSafeInteger(ifVersion) && ifVersion >= 0 ? String(ifVersion) : '-1';
    const reply = await this.#write(key, expected, json, this.#channel, before, after);
    if (Array.isArray(reply) && reply.length === 2) {
      const [status, version]: unknown[] = reply;
      if ((status === 0 || status === 2) && typeof version === 'number') return [status, version];
      if (status === 1 && isVersion(version)) return [1, version];
    }
    throw new StoreError('DP_STORE_BAD_REPLY', `${what}: unexpected reply ${JSON.stringify(reply)} from the write script`);
  }

  /**
   * The document is committed and announced; only the index may lag. The
   * caller hears about it because it matters for nodes that missed the
   * announcement, but the write must not be retried as if it had failed.
   */
  async #raiseIndex(id: string, version: number, deleted: boolean): Promise<void> {
    try {
      await this.#index(this.#indexKey, id, String(version), deleted ? '1' : '0');
    } catch (err) {
      throw new StoreError('DP_STORE_INDEX_LAG',
        `tenant ${id} version ${version} was ${deleted ? 'deleted' : 'written'} and announced, but the version index was not updated `
        + `(${err instanceof Error ? err.message : String(err)}); nodes that missed the announcement see it at the tenant's next write`);
    }
  }
}

interface Deferred {
  readonly promise: Promise<void>;
  readonly settled: boolean;
  resolve(): void;
}

function deferred(): Deferred {
  let resolvePromise: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => { resolvePromise = resolve; });
  const d = {
    promise,
    settled: false,
    resolve: () => {
      d.settled = true;
      resolvePromise();
    },
  };
  return d;
}

/** A stored decimal version; 0 for anything else (absent, garbage, beyond 2^53, negative tombstone). */
function parseVersion(raw: string | null | undefined): number {
  if (raw === null || raw === undefined || !/^\d{1,16}$/.test(raw)) return 0;
  const n = Number(raw);
  return isVersion(n) ? n : 0;
}

function reportListenerError(err: unknown): void {
  process.emitWarning(err instanceof Error ? err : new Error(String(err)), { code: 'DP_STORE_LISTENER_ERROR' });
}
