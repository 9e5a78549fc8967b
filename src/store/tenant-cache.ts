/**
 * TenantCache: the compiled rules of every tenant and the global document,
 * held in memory for the call path. A call reads it synchronously (`get`,
 * `global`): no await, no store round trip, and no dependency on the store
 * being reachable at that moment.
 *
 * How it stays current:
 *   - `watch` announcements trigger a reload of the named tenant (or the
 *     global document), unless the announced version is not newer than the
 *     cached one (this node's own echo, or a late duplicate);
 *   - every `verifyIntervalMs` it compares `tenantVersions()` and
 *     `globalVersion()` with what it holds and reloads every difference,
 *     including tenants that appeared or vanished. A missed announcement (a
 *     pub/sub reconnect, a lagging subscriber) therefore leaves a node on
 *     stale rules for at most about that long. Versions are compared for
 *     equality, not order, so a store restored from an older backup is
 *     followed too.
 * Loads of one tenant may overlap (an announcement and a poll); the result
 * of the load started last wins, since it read the newest state.
 *
 * A document that does not compile (or that the store cannot decode) is
 * logged once per (tenant, version) and the previous compiled rules stay in
 * force; polling does not reload that version again.
 *
 * When the store is unreachable, calls go on with the cached rules. One
 * warning marks the start of the outage and one info its end, whatever the
 * number of failed polls or reloads in between; the first successful poll
 * compares every version, which resynchronises whatever changed meanwhile.
 * A store that comes back empty (Redis restarted without persistence) is
 * followed like any other change: its tenants disappear from the cache.
 *
 * Change listeners: `onChange(id, entry)` fires after a tenant was added,
 * replaced (entry) or removed (undefined), so a consumer can maintain its
 * indexes (numbers → tenant, trunk sources) incrementally; global changes go
 * to the separate `onGlobalChange`, since no consumer indexes both the same
 * way. Listeners run synchronously after the cache changed; an exception in
 * one is logged and does not affect the cache or the other listeners.
 */
import type { GlobalDocument, TenantDocument } from '../routing/model.js';
import { compileGlobal as defaultCompileGlobal, compileTenant as defaultCompileTenant, EMPTY_GLOBAL } from '../routing/index.js';
import type { CompiledGlobal, CompiledTenant } from '../routing/index.js';
import type { Logger } from '../sip/logger.js';
import { StoreError, StoredDocumentCorrupt } from './store-error.js';
import type { ConfigChange, TenantStore, Versioned } from './tenant-store.js';

export interface CachedTenant {
  readonly id: string;
  readonly version: number;
  readonly doc: TenantDocument;
  readonly compiled: CompiledTenant;
}

export interface CachedGlobal {
  /** 0 until a global document was written. */
  readonly version: number;
  readonly doc: GlobalDocument;
  readonly compiled: CompiledGlobal;
}

/** Starts a repeating job and returns the function that stops it. */
export type IntervalScheduler = (job: () => void, intervalMs: number) => () => void;

export interface TenantCacheOptions {
  store: TenantStore;
  log: Logger;
  /** Validates and compiles a tenant document; throws when it is not acceptable. Default `compileTenant`. */
  compile?: (doc: TenantDocument) => CompiledTenant;
  /** Default `compileGlobal`. */
  compileGlobal?: (doc: GlobalDocument) => CompiledGlobal;
  /** Period of the version check against the store. Default 2 s. */
  verifyIntervalMs?: number;
  /** Timer source for the version check, injectable so tests fire it by hand. */
  scheduleInterval?: IntervalScheduler;
  /** Most tenant documents loaded at once (start-up, resync). Default 32. */
  loadConcurrency?: number;
}

const DEFAULT_VERIFY_INTERVAL_MS = 2_000;
const DEFAULT_LOAD_CONCURRENCY = 32;

const EMPTY_GLOBAL_ENTRY: CachedGlobal = Object.freeze({ version: 0, doc: Object.freeze({}), compiled: EMPTY_GLOBAL });

/** Default scheduler: Node's setInterval, unref'd so the check never keeps the process alive. */
const nodeScheduleInterval: IntervalScheduler = (job, intervalMs) => {
  const handle = setInterval(job, intervalMs);
  handle.unref();
  return () => clearInterval(handle);
};

type TenantListener = (id: string, entry: CachedTenant | undefined) => void;
type GlobalListener = (global: CachedGlobal) => void;

export class TenantCache {
  readonly #store: TenantStore;
  readonly #log: Logger;
  readonly #compile: (doc: TenantDocument) => CompiledTenant;
  readonly #compileGlobal: (doc: GlobalDocument) => CompiledGlobal;
  readonly #verifyIntervalMs: number;
  readonly #scheduleInterval: IntervalScheduler;
  readonly #loadConcurrency: number;

  readonly #tenants = new Map<string, CachedTenant>();
  #global: CachedGlobal = EMPTY_GLOBAL_ENTRY;
  /** Tenant id → the version that was rejected (and logged); not reloaded until the store has another. */
  readonly #rejected = new Map<string, number>();
  #rejectedGlobal: number | undefined;

  /** Sequence number of the latest load started per tenant; an older load's result is dropped. */
  readonly #latestLoad = new Map<string, number>();
  #latestGlobalLoad = 0;
  #loadCounter = 0;

  readonly #tenantListeners = new Set<TenantListener>();
  readonly #globalListeners = new Set<GlobalListener>();
  /** Background work (announcement reloads, polls), so `idle`/`stop` can wait for it. */
  readonly #inFlight = new Set<Promise<void>>();
  #verifying: Promise<void> | undefined;
  #unwatch: (() => void) | undefined;
  #stopInterval: (() => void) | undefined;
  #state: 'new' | 'starting' | 'running' | 'stopped' = 'new';
  #down = false;
  #downSince = 0;

  constructor(options: TenantCacheOptions) {
    this.#store = options.store;
    this.#log = options.log;
    this.#compile = options.compile ?? defaultCompileTenant;
    this.#compileGlobal = options.compileGlobal ?? defaultCompileGlobal;
    this.#verifyIntervalMs = options.verifyIntervalMs ?? DEFAULT_VERIFY_INTERVAL_MS;
    if (!Number.isFinite(this.#verifyIntervalMs) || this.#verifyIntervalMs <= 0) {
      throw new RangeError(`verifyIntervalMs must be a positive number, got ${this.#verifyIntervalMs}`);
    }
    this.#scheduleInterval = options.scheduleInterval ?? nodeScheduleInterval;
    this.#loadConcurrency = options.loadConcurrency ?? DEFAULT_LOAD_CONCURRENCY;
    if (!Number.isSafeInteger(this.#loadConcurrency) || this.#loadConcurrency < 1) {
      throw new RangeError(`loadConcurrency must be a positive integer, got ${this.#loadConcurrency}`);
    }
  }

  /**
   * Loads every tenant and the global document, then follows changes.
   * Rejects with DP_STORE_UNAVAILABLE if the store cannot be read: a node
   * must not take calls without its rules. A document that does not compile
   * is logged and skipped; it does not stop start-up.
   */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`TenantCache.start: already ${this.#state}`);
    this.#state = 'starting';
    // Subscribe before reading, so a write made during the load is either
    // in what we read or announced afterwards.
    this.#unwatch = this.#store.watch((change) => { this.#onAnnouncement(change); });
    try {
      const [versions, globalVersion] = await Promise.all([this.#store.tenantVersions(), this.#store.globalVersion()]);
      const jobs = [...versions.keys()].map((id) => () => this.#loadTenant(id));
      if (globalVersion !== 0) jobs.push(() => this.#loadGlobal());
      await runLimited(jobs, this.#loadConcurrency);
    } catch (err) {
      this.#unwatch();
      this.#unwatch = undefined;
      this.#state = 'stopped';
      throw new StoreError('DP_STORE_UNAVAILABLE', `tenant rules could not be loaded: ${errorMessage(err)}`, { cause: err });
    }
    if (this.#state !== 'starting') return; // stopped while loading
    this.#state = 'running';
    this.#stopInterval = this.#scheduleInterval(() => { void this.verify(); }, this.#verifyIntervalMs);
    this.#log.info({ tenants: this.#tenants.size, rejected: this.#rejected.size, globalVersion: this.#global.version }, 'tenant rules loaded');
  }

  /** The tenant's current rules, or undefined. Synchronous: this is the call path. */
  get(id: string): CachedTenant | undefined {
    return this.#tenants.get(id);
  }

  all(): IterableIterator<CachedTenant> {
    return this.#tenants.values();
  }

  get size(): number {
    return this.#tenants.size;
  }

  global(): CachedGlobal {
    return this.#global;
  }

  /** Called after a tenant was added or replaced (entry) or removed (undefined). Returns the unsubscribe function. */
  onChange(listener: TenantListener): () => void {
    this.#tenantListeners.add(listener);
    return () => { this.#tenantListeners.delete(listener); };
  }

  /** Called after the global document's rules changed. Returns the unsubscribe function. */
  onGlobalChange(listener: GlobalListener): () => void {
    this.#globalListeners.add(listener);
    return () => { this.#globalListeners.delete(listener); };
  }

  /**
   * Compares every version with the store and reloads the differences (what
   * the timer runs). Never rejects: an unreachable store is reported as an
   * outage. Concurrent calls share one run.
   */
  verify(): Promise<void> {
    if (this.#state !== 'running') return Promise.resolve();
    this.#verifying ??= this.#track(this.#runVerify()).finally(() => { this.#verifying = undefined; });
    return this.#verifying;
  }

  /** Resolves once no reload or check is in progress (tests; orderly shutdown). */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** Stops following the store and waits for work in progress. The cached rules stay readable. */
  async stop(): Promise<void> {
    this.#state = 'stopped';
    this.#unwatch?.();
    this.#unwatch = undefined;
    this.#stopInterval?.();
    this.#stopInterval = undefined;
    await this.idle();
  }

  #onAnnouncement(change: ConfigChange): void {
    if (this.#state !== 'starting' && this.#state !== 'running') return;
    if (change.kind === 'global') {
      if (change.version <= this.#global.version || change.version === this.#rejectedGlobal) return;
      this.#background(() => this.#loadGlobal());
      return;
    }
    const cached = this.#tenants.get(change.tenant);
    // This node's own write echoed back, or an announcement overtaken by a
    // load that already read something newer.
    if (cached !== undefined && change.version <= cached.version) return;
    if (cached === undefined && change.deleted === true) return;
    if (change.deleted !== true && this.#rejected.get(change.tenant) === change.version) return;
    this.#background(() => this.#loadTenant(change.tenant));
  }

  async #runVerify(): Promise<void> {
    let versions: Map<string, number>;
    let globalVersion: number;
    try {
      [versions, globalVersion] = await Promise.all([this.#store.tenantVersions(), this.#store.globalVersion()]);
    } catch (err) {
      this.#storeFailed(err);
      return;
    }
    if (this.#state !== 'running') return;
    this.#storeReachable();

    const jobs: (() => Promise<void>)[] = [];
    for (const [id, version] of versions) {
      if (this.#tenants.get(id)?.version !== version && this.#rejected.get(id) !== version) jobs.push(() => this.#loadTenant(id));
    }
    for (const id of this.#tenants.keys()) {
      if (!versions.has(id)) jobs.push(() => this.#loadTenant(id));
    }
    for (const id of this.#rejected.keys()) {
      // A rejected document that is gone from the store: forget it, so a
      // later document with the same version number would be judged afresh.
      if (!versions.has(id) && !this.#tenants.has(id)) this.#rejected.delete(id);
    }
    if (globalVersion !== this.#global.version && globalVersion !== this.#rejectedGlobal) jobs.push(() => this.#loadGlobal());
    try {
      await runLimited(jobs, this.#loadConcurrency);
    } catch (err) {
      this.#storeFailed(err);
    }
  }

  /** Reads one tenant and applies it; rejects only when the store is unreachable. */
  async #loadTenant(id: string): Promise<void> {
    const load = ++this.#loadCounter;
    this.#latestLoad.set(id, load);
    let got: Versioned<TenantDocument> | undefined;
    let corrupt: StoredDocumentCorrupt | undefined;
    try {
      got = await this.#store.getTenant(id);
    } catch (err) {
      if (!(err instanceof StoredDocumentCorrupt)) {
        if (this.#latestLoad.get(id) === load) this.#latestLoad.delete(id);
        throw err;
      }
      corrupt = err;
    }
    if (this.#latestLoad.get(id) !== load) return; // a later load answers for this tenant
    this.#latestLoad.delete(id);
    if (this.#state === 'stopped') return;
    if (corrupt !== undefined) this.#rejectTenant(id, corrupt.version, corrupt);
    else this.#applyTenant(id, got);
  }

  #applyTenant(id: string, got: Versioned<TenantDocument> | undefined): void {
    const cached = this.#tenants.get(id);
    if (got === undefined) {
      this.#rejected.delete(id);
      if (cached === undefined) return;
      this.#tenants.delete(id);
      this.#log.info({ tenant: id, version: cached.version }, 'tenant removed');
      this.#emitTenant(id, undefined);
      return;
    }
    if (cached?.version === got.version || this.#rejected.get(id) === got.version) return;
    let compiled: CompiledTenant;
    try {
      // The store files documents under their id; a mismatch (a fake or
      // hand-edited backend) must not let one tenant's rules answer for another.
      if (got.doc.id !== id) throw new Error(`the document's id is ${JSON.stringify(got.doc.id)}`);
      compiled = this.#compile(got.doc);
    } catch (err) {
      this.#rejectTenant(id, got.version, err);
      return;
    }
    const entry: CachedTenant = Object.freeze({ id, version: got.version, doc: got.doc, compiled });
    this.#rejected.delete(id);
    this.#tenants.set(id, entry);
    this.#log.debug({ tenant: id, version: got.version, previous: cached?.version }, 'tenant rules loaded');
    this.#emitTenant(id, entry);
  }

  #rejectTenant(id: string, version: number, err: unknown): void {
    if (this.#rejected.get(id) === version) return;
    this.#rejected.set(id, version);
    const kept = this.#tenants.get(id)?.version;
    this.#log.error({ tenant: id, version, keptVersion: kept, err },
      kept === undefined ? 'tenant document rejected; the tenant has no rules' : 'tenant document rejected; calls keep the previous rules');
  }

  async #loadGlobal(): Promise<void> {
    const load = ++this.#loadCounter;
    this.#latestGlobalLoad = load;
    let got: Versioned<GlobalDocument>;
    try {
      got = await this.#store.getGlobal();
    } catch (err) {
      if (!(err instanceof StoredDocumentCorrupt)) throw err;
      if (this.#latestGlobalLoad === load && this.#state !== 'stopped') this.#rejectGlobal(err.version, err);
      return;
    }
    if (this.#latestGlobalLoad !== load || this.#state === 'stopped') return;
    if (got.version === this.#global.version || got.version === this.#rejectedGlobal) return;
    let entry: CachedGlobal;
    if (got.version === 0) {
      entry = EMPTY_GLOBAL_ENTRY;
    } else {
      try {
        entry = Object.freeze({ version: got.version, doc: got.doc, compiled: this.#compileGlobal(got.doc) });
      } catch (err) {
        this.#rejectGlobal(got.version, err);
        return;
      }
    }
    this.#rejectedGlobal = undefined;
    this.#global = entry;
    this.#log.debug({ version: entry.version }, 'global rules loaded');
    for (const listener of [...this.#globalListeners]) {
      try {
        listener(entry);
      } catch (err) {
        this.#log.error({ err }, 'global change listener failed');
      }
    }
  }

  #rejectGlobal(version: number, err: unknown): void {
    if (this.#rejectedGlobal === version) return;
    this.#rejectedGlobal = version;
    this.#log.error({ version, keptVersion: this.#global.version, err }, 'global document rejected; calls keep the previous global rules');
  }

  #emitTenant(id: string, entry: CachedTenant | undefined): void {
    for (const listener of [...this.#tenantListeners]) {
      try {
        listener(id, entry);
      } catch (err) {
        this.#log.error({ tenant: id, err }, 'tenant change listener failed');
      }
    }
  }

  /** Runs a reload in the background; an unreachable store becomes an outage report. */
  #background(job: () => Promise<void>): void {
    void this.#track(job().catch((err: unknown) => { this.#storeFailed(err); }));
  }

  #track(work: Promise<void>): Promise<void> {
    this.#inFlight.add(work);
    void work.finally(() => { this.#inFlight.delete(work); });
    return work;
  }

  #storeFailed(err: unknown): void {
    if (this.#down || this.#state === 'stopped') return;
    this.#down = true;
    this.#downSince = Date.now();
    this.#log.warn({ err: errorMessage(err) }, 'tenant store unreachable; calls keep using the cached rules until it is back');
  }

  #storeReachable(): void {
    if (!this.#down) return;
    this.#down = false;
    this.#log.info({ downForMs: Date.now() - this.#downSince }, 'tenant store reachable again; resynchronising every tenant');
  }
}

/** Runs `jobs` with at most `limit` in flight; rejects with the first failure once the running ones settled. */
async function runLimited(jobs: readonly (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  async function worker(): Promise<void> {
    while (failure === undefined && next < jobs.length) {
      const job = jobs[next++];
      if (job === undefined) return;
      try {
        await job();
      } catch (err) {
        failure ??= { err };
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  if (failure !== undefined) throw failure.err;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
