/**
 * WebhookStore for a single box: in memory, optionally persisted as one
 * JSON file next to the tenant store's (`<file>.webhooks.json`, written like
 * it: temp file, fsync, rename, mode 0600 since it holds signing secrets).
 *
 * Every change runs through one queue. A configuration change (put, delete)
 * builds the next state, writes it to the file, and only then makes it the
 * state readers see: a failed write changes nothing and rejects, and two
 * concurrent puts never lose each other's webhook.
 *
 * Delivery failures are persisted too, but lazily: they come from the
 * dispatcher, possibly many per second while a tenant's endpoint is down,
 * and rewriting the file with an fsync for each would be the slow part of
 * the box. They are written at most `failureFlushMs` after the first
 * unwritten one, with any configuration change, and on close; a crash loses
 * at most that last second of failures (never a configuration).
 *
 * A file that exists but cannot be read or parsed, or holds an entry the
 * store would not accept, stops start-up with DP_STORE_BAD_FILE naming it:
 * starting empty would drop every tenant's webhooks at the next write.
 * Everything is kept as JSON text, so callers always get copies.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { StoreError } from '../store-error.js';
import { assertTenantId } from '../tenant-record.js';
import {
  MAX_FAILURES_PER_WEBHOOK, MAX_WEBHOOKS_PER_TENANT, assertWebhookId, checkPut, decodeJson, encodeFailure,
  type WebhookConfig, type WebhookFailure, type WebhookStore,
} from '../webhook-store.js';
import { writeFileAtomic } from './tenant-store.js';
import { SerialQueue } from './serial-queue.js';

const FORMAT = 'dialplane-webhooks';
const FORMAT_VERSION = 1;
const DEFAULT_FAILURE_FLUSH_MS = 1_000;

export interface EmbeddedWebhookStoreOptions {
  /** The JSON file; absent = memory only (lost at restart). Created at the first write. */
  file?: string;
  /** Longest time a recorded failure stays only in memory. Default 1 s. */
  failureFlushMs?: number;
  /** Told when a lazy failure write fails (the next write retries). Default `process.emitWarning`. */
  onWarning?: (message: string, err: unknown) => void;
}

/** One webhook, immutable: a change replaces it. */
interface Stored {
  readonly json: string;
  /** Newest first. */
  readonly failures: readonly string[];
}

type State = ReadonlyMap<string, ReadonlyMap<string, Stored>>;

export class EmbeddedWebhookStore implements WebhookStore {
  /** Set only by open(), which loaded it. */
  #file: string | undefined;
  readonly #failureFlushMs: number;
  readonly #onWarning: (message: string, err: unknown) => void;
  #state: State = new Map();
  /** File tasks, one at a time. */
  readonly #queue = new SerialQueue();
  /** Failures recorded in memory but not yet in the file. */
  #dirty = false;
  #flushTimer: NodeJS.Timeout | undefined;
  #closed = false;

  /** A memory-only store; `open({ file })` for one kept in a file. */
  constructor(options: Omit<EmbeddedWebhookStoreOptions, 'file'> = {}) {
    this.#failureFlushMs = options.failureFlushMs ?? DEFAULT_FAILURE_FLUSH_MS;
    if (!Number.isFinite(this.#failureFlushMs) || this.#failureFlushMs < 0) throw new RangeError(`failureFlushMs must be a non-negative number, got ${this.#failureFlushMs}`);
    this.#onWarning = options.onWarning ?? ((message, err) => process.emitWarning(`${message}: ${err instanceof Error ? err.message : String(err)}`, { code: 'DP_STORE_WEBHOOK_FLUSH' }));
  }

  /** Loads `file` if it exists (DP_STORE_BAD_FILE when it cannot be used). */
  static async open(options: EmbeddedWebhookStoreOptions = {}): Promise<EmbeddedWebhookStore> {
    if (options.file === undefined) return new EmbeddedWebhookStore(options);
    const file = resolve(options.file);
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StoreError('DP_STORE_BAD_FILE', `cannot read the webhook store file ${file}: ${(err as Error).message}`, { cause: err });
    }
    let state: State = new Map();
    if (text !== undefined) {
      try {
        state = parseState(JSON.parse(text));
      } catch (err) {
        throw new StoreError('DP_STORE_BAD_FILE',
          `the webhook store file ${file} is corrupt (${(err as Error).message}); refusing to start rather than replace it with an empty store. Restore it from a backup or move it away`);
      }
    }
    const store = new EmbeddedWebhookStore(options);
    store.#file = file;
    store.#state = state;
    return store;
  }

  async list(tenant: string): Promise<WebhookConfig[]> {
    this.#open();
    assertTenantId(tenant);
    const hooks = this.#state.get(tenant);
    if (hooks === undefined) return [];
    return [...hooks.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .flatMap(([, s]) => { const c = decodeJson<WebhookConfig>(s.json); return c ? [c] : []; });
  }

  async get(tenant: string, id: string): Promise<WebhookConfig | undefined> {
    this.#open();
    assertTenantId(tenant);
    assertWebhookId(id);
    return decodeJson<WebhookConfig>(this.#state.get(tenant)?.get(id)?.json);
  }

  async put(tenant: string, config: WebhookConfig): Promise<void> {
    this.#open();
    const json = checkPut(tenant, config);
    await this.#change(true, (state) => {
      const hooks = new Map(state.get(tenant) ?? []);
      const existing = hooks.get(config.id);
      if (existing === undefined && hooks.size >= MAX_WEBHOOKS_PER_TENANT) {
        throw new StoreError('DP_STORE_BAD_WEBHOOK', `a tenant has at most ${MAX_WEBHOOKS_PER_TENANT} webhooks`);
      }
      hooks.set(config.id, { json, failures: existing?.failures ?? [] });
      return { next: new Map(state).set(tenant, hooks), result: undefined };
    });
  }

  async delete(tenant: string, id: string): Promise<boolean> {
    this.#open();
    assertTenantId(tenant);
    assertWebhookId(id);
    return this.#change(true, (state) => {
      const hooks = new Map(state.get(tenant) ?? []);
      if (!hooks.delete(id)) return { next: state, result: false };
      const next = new Map(state);
      if (hooks.size === 0) next.delete(tenant);
      else next.set(tenant, hooks);
      return { next, result: true };
    });
  }

  async recordFailure(tenant: string, id: string, failure: WebhookFailure): Promise<void> {
    this.#open();
    assertTenantId(tenant);
    assertWebhookId(id);
    const json = encodeFailure(failure);
    await this.#change(false, (state) => {
      const stored = state.get(tenant)?.get(id);
      if (stored === undefined) return { next: state, result: undefined };
      const failures = [json, ...stored.failures].slice(0, MAX_FAILURES_PER_WEBHOOK);
      const hooks = new Map(state.get(tenant)).set(id, { json: stored.json, failures });
      return { next: new Map(state).set(tenant, hooks), result: undefined };
    });
  }

  async failures(tenant: string, id: string): Promise<WebhookFailure[]> {
    this.#open();
    assertTenantId(tenant);
    assertWebhookId(id);
    return (this.#state.get(tenant)?.get(id)?.failures ?? []).flatMap((j) => { const f = decodeJson<WebhookFailure>(j); return f ? [f] : []; });
  }

  /** Writes failures not yet in the file, waits for queued changes, and refuses further calls. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    await this.#queue.run(() => this.#flushFailures()).catch((err: unknown) => this.#onWarning('webhook failures not written at close', err));
    this.#state = new Map();
  }

  /**
   * Runs `change` against the current state inside the queue. `durable`:
   * the file is written before the new state is visible (configurations);
   * otherwise the state changes at once and the file follows lazily (failures).
   */
  #change<T>(durable: boolean, change: (state: State) => { next: State; result: T }): Promise<T> {
    return this.#queue.run(async () => {
      const { next, result } = change(this.#state);
      if (next === this.#state) return result;
      if (durable && this.#file !== undefined) {
        await writeFileAtomic(this.#file, serializeState(next));
        // The file now holds every failure of `next` as well.
        this.#dirty = false;
      } else if (this.#file !== undefined) {
        this.#dirty = true;
        this.#scheduleFlush();
      }
      this.#state = next;
      return result;
    });
  }

  async #flushFailures(): Promise<void> {
    if (this.#file === undefined || !this.#dirty) return;
    this.#dirty = false;
    try {
      await writeFileAtomic(this.#file, serializeState(this.#state));
    } catch (err) {
      this.#dirty = true;
      throw err;
    }
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined || this.#closed) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#queue.run(() => this.#flushFailures()).catch((err: unknown) => {
        // Still dirty: the next failure or configuration change writes them.
        this.#onWarning('webhook failures could not be written', err);
      });
    }, this.#failureFlushMs);
    // Pending failures alone must not keep the process alive; close() writes them.
    this.#flushTimer.unref();
  }

  #open(): void {
    if (this.#closed) throw new StoreError('DP_STORE_CLOSED', 'the webhook store is closed');
  }
}

/** Tenants and webhooks sorted by id, one webhook per line: diffs and greps well. */
function serializeState(state: State): string {
  const byId = <V>(m: ReadonlyMap<string, V>): Array<[string, V]> => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const tenants = byId(state).map(([tenant, hooks]) => {
    const entries = byId(hooks).map(([id, s]) => `\n  ${JSON.stringify(id)}:{"config":${s.json},"failures":[${s.failures.join(',')}]}`);
    return `\n ${JSON.stringify(tenant)}:{${entries.join(',')}}`;
  });
  return `{"format":"${FORMAT}","formatVersion":${FORMAT_VERSION},"tenants":{${tenants.join(',')}${tenants.length > 0 ? '\n' : ''}}}\n`;
}

function parseState(value: unknown): State {
  const root = asObject(value, 'the file');
  if (root.format !== FORMAT) throw new Error(`"format" is not "${FORMAT}"`);
  if (root.formatVersion !== FORMAT_VERSION) throw new Error(`unsupported formatVersion ${JSON.stringify(root.formatVersion)}`);
  const state = new Map<string, Map<string, Stored>>();
  for (const [tenant, hooksValue] of Object.entries(asObject(root.tenants, '"tenants"'))) {
    const hooks = new Map<string, Stored>();
    for (const [id, entryValue] of Object.entries(asObject(hooksValue, `tenant ${JSON.stringify(tenant)}`))) {
      const what = `webhook ${JSON.stringify(tenant)}/${JSON.stringify(id)}`;
      const entry = asObject(entryValue, what);
      const config = entry.config as WebhookConfig;
      let json: string;
      try {
        // The same checks as a put: the file cannot smuggle in what the API refuses.
        json = checkPut(tenant, config);
      } catch (err) {
        throw new Error(`${what}: ${(err as Error).message}`, { cause: err });
      }
      if (config.id !== id) throw new Error(`${what}: the configuration's id differs`);
      if (!Array.isArray(entry.failures)) throw new Error(`${what}: "failures" is not an array`);
      const failures = (entry.failures as unknown[]).slice(0, MAX_FAILURES_PER_WEBHOOK).map((f, i) => {
        try {
          return encodeFailure(f as WebhookFailure);
        } catch (err) {
          throw new Error(`${what}: failure ${i} is not a failure record`, { cause: err });
        }
      });
      hooks.set(id, { json, failures });
    }
    if (hooks.size > 0) state.set(tenant, hooks);
  }
  return state;
}

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}
