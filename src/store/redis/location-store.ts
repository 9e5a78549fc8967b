/**
 * Location service (RFC 3261 §10.3 bindings) in Redis, shared by every node
 * of a cluster of call servers.
 *
 * Layout (Redis ≥ 6.2, standalone or Cluster):
 *
 *   `${prefix}loc:{<aor>}`  string, the record as JSON `{"version":n,"bindings":[...]}`
 *                           (format and decoder in ../location-record.ts), with
 *                           PEXPIREAT at its latest binding expiry.
 *   `${prefix}loc-index`    sorted set, member = AOR, score = an upper bound of
 *                           the AOR's latest binding expiry; only for `list`.
 *
 * `put` is one Lua compare-and-set on the AOR key, which is what §10.3 step 8
 * asks of a registrar: "binding updates MUST be committed (that is, made
 * visible to the proxy or redirect server) if and only if all binding
 * updates and additions succeed". The hash tag `{<aor>}` pins everything of
 * one AOR to one Cluster slot, so later per-AOR keys can join the script.
 *
 * Expiry needs no sweeper: §10.3 step 7 lets a binding go once "the
 * expiration interval ... has passed", and PEXPIREAT at the latest expiry
 * makes Redis forget an AOR whose bindings have all expired by itself.
 *
 * The index and Redis Cluster: a script touching both the AOR key and the one
 * global index would be a cross-slot script, which Cluster rejects, and
 * giving the index the same hash tag as every AOR would put all AORs in one
 * slot. So the index is maintained by separate commands after the CAS and is
 * allowed to be stale in a controlled direction:
 *   - it is only ever raised (`ZADD GT`), never lowered or emptied by `put`,
 *     so it is a superset of the live AORs: racing writers cannot make an
 *     older, lower score win, and removing an AOR needs no cross-key step;
 *   - `list` checks every candidate against its AOR key, so AORs that were
 *     removed, or whose bindings got shorter expiries, are filtered out;
 *   - members whose score has passed are deleted by a script that reads the
 *     Redis server clock (the clock PEXPIREAT uses), at most once a minute
 *     from `put` and on every `list`, so the index does not grow with AORs
 *     that registered once and left.
 * The one gap: if the connection drops between a successful CAS and its
 * index update, that AOR is missing from `list` until its next REGISTER
 * refresh (typically within half its expiry). Routing never uses the index
 * (it calls `get`), so this only affects the admin listing.
 * The index is one key, hence one Cluster slot taking one cheap ZADD per
 * REGISTER; if that ever becomes a hot spot, shard it by a hash of the AOR.
 */
import type { Redis } from 'ioredis';
import type { AorRecord, Binding, LocationService } from '../../sip/registrar/location-service.js';
import { decodeAorRecord, latestExpiry, validBindings } from '../location-record.js';
import { StoreError } from '../store-error.js';
import { isWellFormedUnicode } from '../unicode.js';
import { defineSingleKeyScript, isWrongTypeError, type SingleKeyScript } from './script.js';

export interface RedisLocationStoreOptions {
  redis: Redis;
  /** Namespace for every key of this store, e.g. `dp:`; no glob characters needed. */
  prefix: string;
}

/** Key holding one AOR's record. The hash tag keeps an AOR's keys in one Cluster slot. */
export function locationKey(prefix: string, aor: string): string {
  return `${prefix}loc:{${aor}}`;
}

/** Sorted set of AORs for `list`. */
export function locationIndexKey(prefix: string): string {
  return `${prefix}loc-index`;
}

/**
 * Compare-and-set of one AOR's record.
 *
 * The stored version is read with a fixed pattern rather than cjson: the
 * JavaScript decoder uses the same pattern, so `get` and this script always
 * agree on the version of any value, corrupt ones included (see
 * ../location-record.ts). cjson is not used for the bindings either: they
 * are spliced in as the exact JSON text the client produced, so nothing is
 * re-encoded (cjson would turn `[]` into `{}` and round long numbers).
 *
 * A new version is max(current + 1, server time in µs). Plain `current + 1`
 * would restart at 1 after the key expired or was deleted, and a registrar
 * still holding a record read before that could then win a CAS against an
 * unrelated newer record with the same number (ABA). Time-based versions
 * keep growing across the key's lifetimes; µs since 1970 stay below 2^53
 * until the year 2255.
 *
 * KEYS[1] the AOR key
 * ARGV[1] expected version, decimal
 * ARGV[2] the bindings as a JSON array, or '' to remove the AOR
 * ARGV[3] PEXPIREAT: the latest binding expiry, ms since the epoch
 * Returns 1 when written, 0 when the version did not match.
 */
const CAS_LUA = `
local current = 0
local raw = redis.pcall('GET', KEYS[1])
if type(raw) == 'string' then
  local digits = string.match(raw, '^{"version":(%d+),"bindings":')
  if digits and #digits <= 16 then
    local v = tonumber(digits)
    if v <= 9007199254740991 then current = v end
  end
end
if tonumber(ARGV[1]) ~= current then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  return 1
end
local t = redis.call('TIME')
local version = tonumber(t[1]) * 1000000 + tonumber(t[2])
if version < current + 1 then version = current + 1 end
redis.call('SET', KEYS[1], '{"version":' .. string.format('%.0f', version) .. ',"bindings":' .. ARGV[2] .. '}')
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
`;

/**
 * Deletes index members whose latest expiry has passed by the Redis server's
 * clock, the clock that expires the AOR keys themselves (an app server's
 * clock may run ahead and would drop live AORs from the index).
 * KEYS[1] the index. Returns the number of members removed.
 */
const PRUNE_INDEX_LUA = `
local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', nowMs))
`;

/** How often `put` prunes the index; `list` always prunes. */
const INDEX_PRUNE_INTERVAL_MS = 60_000;
/** How many AOR keys `list` reads concurrently while checking index candidates. */
const LIST_CHUNK = 256;

export class RedisLocationStore implements LocationService {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #indexKey: string;
  readonly #cas: SingleKeyScript;
  readonly #pruneIndex: SingleKeyScript;
  #nextPruneAt = 0;

  constructor(options: RedisLocationStoreOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#indexKey = locationIndexKey(options.prefix);
    this.#cas = defineSingleKeyScript(options.redis, 'dialplaneLocationCas', CAS_LUA);
    this.#pruneIndex = defineSingleKeyScript(options.redis, 'dialplaneLocationPruneIndex', PRUNE_INDEX_LUA);
  }

  async get(aor: string, now: number): Promise<AorRecord> {
    assertEncodable(aor);
    let raw: string | null;
    try {
      raw = await this.#redis.get(locationKey(this.#prefix, aor));
    } catch (err) {
      // A key of another type is corrupt data like any other: version 0,
      // which the CAS script also reports for it, so the next put repairs it.
      if (isWrongTypeError(err)) return { version: 0, bindings: [] };
      throw err;
    }
    if (raw === null) return { version: 0, bindings: [] };
    const record = decodeAorRecord(raw);
    return { version: record.version, bindings: record.bindings.filter((b) => b.expiresAt > now) };
  }

  async put(aor: string, expectedVersion: number, bindings: Binding[]): Promise<boolean> {
    assertEncodable(aor);
    const checked = validBindings(aor, bindings);
    // No stored version is anything but a non-negative safe integer.
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) return false;

    // PEXPIREAT takes integer ms. Round up (rounding down could drop the key
    // up to 1 ms before its last binding expires) and keep it positive.
    const expireAt = checked.length > 0 ? Math.max(1, Math.ceil(latestExpiry(checked))) : 0;
    const reply = await this.#cas(
      locationKey(this.#prefix, aor),
      String(expectedVersion),
      checked.length > 0 ? JSON.stringify(checked) : '',
      String(expireAt),
    );
    if (reply === 0) return false;
    if (reply !== 1) throw new StoreError('DP_STORE_BAD_REPLY', `unexpected reply ${String(reply)} from the CAS script`);

    if (checked.length > 0) await this.#index(aor, expireAt);
    return true;
  }

  async list(now: number): Promise<string[]> {
    await this.#pruneIndex(this.#indexKey);
    const candidates = await this.#redis.zrangebyscore(this.#indexKey, `(${now}`, '+inf');
    const live: string[] = [];
    for (let i = 0; i < candidates.length; i += LIST_CHUNK) {
      const chunk = candidates.slice(i, i + LIST_CHUNK);
      const records = await Promise.all(chunk.map((aor) => this.get(aor, now)));
      records.forEach((record, j) => {
        const aor = chunk[j];
        if (aor !== undefined && record.bindings.length > 0) live.push(aor);
      });
    }
    return live.sort();
  }

  /**
   * Raises the AOR's index score and, at most once a minute, prunes the
   * index. The binding is already committed, so a failure here must not turn
   * a successful REGISTER into an error: the index is advisory (see the
   * header), and the next refresh of this AOR re-adds it.
   */
  async #index(aor: string, expireAt: number): Promise<void> {
    const steps: Promise<unknown>[] = [this.#redis.zadd(this.#indexKey, 'GT', expireAt, aor)];
    const wallNow = Date.now();
    if (wallNow >= this.#nextPruneAt) {
      this.#nextPruneAt = wallNow + INDEX_PRUNE_INTERVAL_MS;
      steps.push(this.#pruneIndex(this.#indexKey));
    }
    await Promise.allSettled(steps);
  }
}

/**
 * ioredis sends strings as UTF-8; a lone UTF-16 surrogate cannot be encoded
 * and would become U+FFFD, so two different AORs could share one key. A
 * parsed SIP message never yields one (decoding bytes cannot produce it), so
 * this is a caller bug.
 */
function assertEncodable(aor: string): void {
  if (!isWellFormedUnicode(aor)) {
    throw new StoreError('DP_STORE_BAD_AOR', `AOR ${JSON.stringify(aor)} is not valid Unicode`);
  }
}
