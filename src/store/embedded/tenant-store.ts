/**
 * TenantStore for a single box: tenant documents, the global document and
 * round-robin counters in memory, optionally persisted as one JSON file.
 *
 * Writes (put, delete) run one at a time through a queue. Each checks its
 * `ifVersion` against the committed state, writes the whole new state to
 * the file, and only then makes it the state readers see, so:
 *   - two concurrent puts never interleave, and each compare-and-set sees
 *     the result of the write queued before it;
 *   - a reader sees the old document until the new one is durable, and a
 *     write that fails (disk full) changes nothing and rejects.
 * The file is replaced atomically (temp file in the same directory, fsync,
 * rename, fsync of the directory): after a crash it holds the old state or
 * the new one, never a mix. A leftover temp file from a crash is ignored and
 * removed at the next open. Rewriting the whole state per write is fine for
 * the size of a single box's configuration (tens of tenants, admin-rate
 * writes); a deployment that outgrows it runs Redis.
 *
 * A file that exists but cannot be read or parsed stops start-up with
 * DP_STORE_BAD_FILE naming it: starting empty would overwrite the user's
 * configuration at the first write.
 *
 * Versions come from one store-wide counter (persisted), so a tenant deleted
 * and created again never reuses a version it had before: a writer holding a
 * version read before the delete cannot win a compare-and-set against the
 * new document (the ABA problem), and a cache comparing versions sees the
 * new document as newer.
 *
 * Round-robin counters change on calls, not on admin writes, so they are
 * persisted lazily: at most `counterFlushMs` after an increment, with any
 * other write, and on close. Losing the last second of increments in a crash
 * only shifts a rotation.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { GlobalDocument, TenantDocument } from '../../routing/model.js';
import { StoreError } from '../store-error.js';
import {
  assertCounterKey, assertTenantId, decodeDocument, encodeDocument, isVersion,
} from '../tenant-record.js';
import {
  TenantStoreConflict,
  type ConfigChange, type TenantStore, type Versioned, type WriteOptions,
} from '../tenant-store.js';

export interface EmbeddedTenantStoreOptions {
  /** The JSON file holding the whole state; absent = memory only. Created at open when missing. */
  file?: string;
  /** Longest time a counter increment stays only in memory. Default 1 s. */
  counterFlushMs?: number;
  /** Receives exceptions thrown by watch listeners. Default: `process.emitWarning`. */
  onListenerError?: (err: unknown) => void;
  /** Test hook: replaces the atomic file write (to count concurrency or inject failures). */
  writeFile?: (file: string, text: string) => Promise<void>;
}

/** A document as stored: the exact JSON text written at put. */
interface StoredDoc {
  readonly version: number;
  readonly json: string;
}

/** The committed state; replaced as a whole, never edited in place. */
interface State {
  readonly lastVersion: number;
  readonly tenants: ReadonlyMap<string, StoredDoc>;
  readonly global: StoredDoc | undefined;
}

const FORMAT = 'dialplane-tenant-store';
const FORMAT_VERSION = 1;
const TEMP_INFIX = '.tmp-';
const DEFAULT_COUNTER_FLUSH_MS = 1_000;

interface Subscription {
  readonly listener: (change: ConfigChange) => void;
}

export class EmbeddedTenantStore implements TenantStore {
  readonly #file: string | undefined;
  readonly #writeFile: (file: string, text: string) => Promise<void>;
  readonly #onListenerError: (err: unknown) => void;
  readonly #counterFlushMs: number;
  readonly #counters: Map<string, number>;
  readonly #subscriptions = new Set<Subscription>();
  #state: State;
  /** Tail of the write queue; never rejects (each task's own promise does). */
  #queue: Promise<void> = Promise.resolve();
  /** Bumped by every increment; compared with the generation last written to the file. */
  #counterGeneration = 0;
  #persistedCounterGeneration = 0;
  #counterTimer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(options: EmbeddedTenantStoreOptions, file: string | undefined, state: State, counters: Map<string, number>) {
    this.#file = file;
    this.#writeFile = options.writeFile ?? writeFileAtomic;
    this.#onListenerError = options.onListenerError ?? reportListenerError;
    this.#counterFlushMs = options.counterFlushMs ?? DEFAULT_COUNTER_FLUSH_MS;
    if (!Number.isFinite(this.#counterFlushMs) || this.#counterFlushMs < 0) {
      throw new RangeError(`counterFlushMs must be a non-negative number, got ${this.#counterFlushMs}`);
    }
    this.#state = state;
    this.#counters = counters;
  }

  /**
   * Opens the store: loads `file` if it exists (rejecting with
   * DP_STORE_BAD_FILE if it cannot be read or parsed), removes temp files a
   * crash left next to it, and creates it if missing, so an unwritable
   * directory fails start-up rather than the first admin write.
   */
  static async open(options: EmbeddedTenantStoreOptions = {}): Promise<EmbeddedTenantStore> {
    if (options.file === undefined) {
      return new EmbeddedTenantStore(options, undefined, { lastVersion: 0, tenants: new Map(), global: undefined }, new Map());
    }
    const file = resolve(options.file);
    const loaded = await loadStateFile(file);
    const store = new EmbeddedTenantStore(
      options, file,
      loaded?.state ?? { lastVersion: 0, tenants: new Map(), global: undefined },
      loaded?.counters ?? new Map(),
    );
    await removeTempFiles(file);
    if (loaded === undefined) {
      try {
        await store.#enqueue(() => store.#commit(store.#state));
      } catch (err) {
        throw new StoreError('DP_STORE_BAD_FILE', `cannot create the tenant store file ${file}: ${errorMessage(err)}`);
      }
    }
    return store;
  }

  async getTenant(id: string): Promise<Versioned<TenantDocument> | undefined> {
    assertTenantId(id);
    const stored = this.#state.tenants.get(id);
    if (stored === undefined) return undefined;
    return { version: stored.version, doc: decodeDocument(`tenant ${id}`, stored.version, stored.json, id) as unknown as TenantDocument };
  }

  async putTenant(doc: TenantDocument, opts: WriteOptions = {}): Promise<number> {
    const json = encodeDocument('tenant document', doc);
    const id = doc.id;
    assertTenantId(id);
    this.#assertOpen();
    return this.#enqueue(async () => {
      const state = this.#state;
      checkVersion(`tenant ${id}`, opts.ifVersion, state.tenants.get(id)?.version ?? 0);
      const version = state.lastVersion + 1;
      const tenants = new Map(state.tenants).set(id, { version, json });
      await this.#commit({ lastVersion: version, tenants, global: state.global });
      this.#announce({ kind: 'tenant', tenant: id, version });
      return version;
    });
  }

  async deleteTenant(id: string, opts: WriteOptions = {}): Promise<boolean> {
    assertTenantId(id);
    this.#assertOpen();
    return this.#enqueue(async () => {
      const state = this.#state;
      const current = state.tenants.get(id);
      checkVersion(`tenant ${id}`, opts.ifVersion, current?.version ?? 0);
      if (current === undefined) return false;
      // The deletion takes a version of its own, so watchers can tell it is
      // newer than the document they hold.
      const version = state.lastVersion + 1;
      const tenants = new Map(state.tenants);
      tenants.delete(id);
      await this.#commit({ lastVersion: version, tenants, global: state.global });
      this.#announce({ kind: 'tenant', tenant: id, version, deleted: true });
      return true;
    });
  }

  async tenantVersions(): Promise<Map<string, number>> {
    const versions = new Map<string, number>();
    for (const [id, stored] of this.#state.tenants) versions.set(id, stored.version);
    return versions;
  }

  async getGlobal(): Promise<Versioned<GlobalDocument>> {
    const stored = this.#state.global;
    if (stored === undefined) return { version: 0, doc: {} };
    return { version: stored.version, doc: decodeDocument('global document', stored.version, stored.json) as GlobalDocument };
  }

  async globalVersion(): Promise<number> {
    return this.#state.global?.version ?? 0;
  }

  async putGlobal(doc: GlobalDocument, opts: WriteOptions = {}): Promise<number> {
    const json = encodeDocument('global document', doc);
    this.#assertOpen();
    return this.#enqueue(async () => {
      const state = this.#state;
      checkVersion('global document', opts.ifVersion, state.global?.version ?? 0);
      const version = state.lastVersion + 1;
      await this.#commit({ lastVersion: version, tenants: state.tenants, global: { version, json } });
      this.#announce({ kind: 'global', version });
      return version;
    });
  }

  async incrCounter(key: string): Promise<number> {
    assertCounterKey(key);
    this.#assertOpen();
    // No await between read and write: the event loop makes this atomic.
    const value = (this.#counters.get(key) ?? 0) + 1;
    this.#counters.set(key, value);
    this.#counterGeneration += 1;
    this.#scheduleCounterFlush();
    return value;
  }

  watch(listener: (change: ConfigChange) => void): () => void {
    const subscription: Subscription = { listener };
    this.#subscriptions.add(subscription);
    return () => {
      this.#subscriptions.delete(subscription);
    };
  }

  /** Writes pending counter increments, waits for queued writes, and refuses further writes. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#counterTimer !== undefined) clearTimeout(this.#counterTimer);
    this.#counterTimer = undefined;
    this.#subscriptions.clear();
    await this.#enqueue(() => this.#flushCounters());
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreError('DP_STORE_CLOSED', 'the tenant store is closed');
  }

  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task);
    this.#queue = run.then(() => undefined, () => undefined);
    return run;
  }

  /**
   * Makes `next` durable (with the counters as they are now), then visible.
   * Runs only inside the queue.
   */
  async #commit(next: State): Promise<void> {
    if (this.#file !== undefined) {
      const generation = this.#counterGeneration;
      await this.#writeFile(this.#file, serializeState(next, this.#counters));
      this.#persistedCounterGeneration = generation;
    }
    this.#state = next;
  }

  async #flushCounters(): Promise<void> {
    if (this.#file === undefined || this.#persistedCounterGeneration === this.#counterGeneration) return;
    await this.#commit(this.#state);
  }

  #scheduleCounterFlush(): void {
    if (this.#file === undefined || this.#counterTimer !== undefined) return;
    this.#counterTimer = setTimeout(() => {
      this.#counterTimer = undefined;
      // A failed flush leaves the generation unpersisted: the next increment
      // schedules another attempt and any document write includes them. The
      // error itself reaches the next admin write, which fails loudly.
      this.#enqueue(() => this.#flushCounters()).catch(() => undefined);
    }, this.#counterFlushMs);
    // Pending counters alone must not keep the process alive; close() flushes.
    this.#counterTimer.unref();
  }

  /**
   * Tells every listener, each in its own microtask: never inside the
   * writer's stack, and a throwing listener neither fails the write nor
   * keeps the others from hearing about it.
   */
  #announce(change: ConfigChange): void {
    const frozen = Object.freeze(change);
    for (const subscription of this.#subscriptions) {
      queueMicrotask(() => {
        if (!this.#subscriptions.has(subscription)) return;
        try {
          subscription.listener(frozen);
        } catch (err) {
          this.#onListenerError(err);
        }
      });
    }
  }
}

function checkVersion(what: string, expected: number | undefined, actual: number): void {
  if (expected !== undefined && expected !== actual) throw new TenantStoreConflict(what, expected, actual);
}

function reportListenerError(err: unknown): void {
  process.emitWarning(err instanceof Error ? err : new Error(String(err)), { code: 'DP_STORE_LISTENER_ERROR' });
}

/**
 * The file: one JSON object, tenants sorted by id, one per line, so the file
 * diffs and greps well. Documents are spliced in as the JSON text stored at
 * put, never re-encoded.
 */
function serializeState(state: State, counters: ReadonlyMap<string, number>): string {
  const doc = (d: StoredDoc): string => `{"version":${d.version},"doc":${d.json}}`;
  const tenants = [...state.tenants].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([id, d]) => `\n  ${JSON.stringify(id)}:${doc(d)}`);
  const counterEntries = [...counters].map(([key, value]) => `${JSON.stringify(key)}:${value}`);
  return `{"format":"${FORMAT}","formatVersion":${FORMAT_VERSION},"lastVersion":${state.lastVersion},\n`
    + `"global":${state.global === undefined ? 'null' : doc(state.global)},\n`
    + `"tenants":{${tenants.join(',')}${tenants.length > 0 ? '\n' : ''}},\n`
    + `"counters":{${counterEntries.join(',')}}}\n`;
}

/** Reads and checks the file; undefined when it does not exist. */
async function loadStateFile(file: string): Promise<{ state: State; counters: Map<string, number> } | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw new StoreError('DP_STORE_BAD_FILE', `cannot read the tenant store file ${file}: ${errorMessage(err)}`);
  }
  try {
    // Fatal decoding: invalid UTF-8 is corruption, not something to paper
    // over with U+FFFD and write back.
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return parseState(JSON.parse(text));
  } catch (err) {
    throw new StoreError('DP_STORE_BAD_FILE',
      `the tenant store file ${file} is corrupt (${errorMessage(err)}); refusing to start rather than replace it with an empty store. Restore it from a backup or move it away`);
  }
}

function parseState(value: unknown): { state: State; counters: Map<string, number> } {
  const root = asObject(value, 'the file');
  if (root.format !== FORMAT) throw new Error(`"format" is not "${FORMAT}"`);
  if (root.formatVersion !== FORMAT_VERSION) throw new Error(`unsupported formatVersion ${JSON.stringify(root.formatVersion)}`);
  const storedLast = root.lastVersion;
  if (typeof storedLast !== 'number' || !Number.isSafeInteger(storedLast) || storedLast < 0) throw new Error('"lastVersion" is not a non-negative integer');
  let lastVersion = storedLast;

  const global = root.global === null ? undefined : parseStoredDoc(root.global, 'global');
  const tenants = new Map<string, StoredDoc>();
  for (const [id, entry] of Object.entries(asObject(root.tenants, '"tenants"'))) {
    try {
      assertTenantId(id);
    } catch {
      throw new Error(`tenant id ${JSON.stringify(id)} is not usable`);
    }
    tenants.set(id, parseStoredDoc(entry, `tenant ${JSON.stringify(id)}`, id));
  }
  const counters = new Map<string, number>();
  for (const [key, count] of Object.entries(asObject(root.counters, '"counters"'))) {
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) throw new Error(`counter ${JSON.stringify(key)} is not a non-negative integer`);
    counters.set(key, count);
  }
  // Never hand out a version again, even if lastVersion was edited down by hand.
  for (const d of [global, ...tenants.values()]) if (d !== undefined && d.version > lastVersion) lastVersion = d.version;
  return { state: { lastVersion, tenants, global }, counters };
}

function parseStoredDoc(value: unknown, what: string, id?: string): StoredDoc {
  const entry = asObject(value, what);
  if (!isVersion(entry.version)) throw new Error(`${what}: "version" is not a positive integer`);
  const doc = asObject(entry.doc, `${what}: "doc"`);
  if (id !== undefined && doc.id !== id) throw new Error(`${what}: the document's id differs`);
  return { version: entry.version, json: JSON.stringify(doc) };
}

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

/**
 * Replaces `file` with `text` (or bytes: prompts) atomically: a temp file in the same directory
 * (rename is only atomic within one file system), fsync'd before the rename
 * so the rename cannot reach the disk before the data, then the directory
 * fsync'd so the rename itself survives a power cut. Mode 0600: tenant
 * documents carry digest HA1 hashes.
 */
export async function writeFileAtomic(file: string, text: string | Uint8Array): Promise<void> {
  const dir = dirname(file);
  const temp = join(dir, `${basename(file)}${TEMP_INFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await fsyncDirectory(dir);
}

async function fsyncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (err) {
    // Some platforms and file systems cannot open or fsync a directory;
    // there the rename is as durable as they make it.
    if (!['EISDIR', 'EINVAL', 'EPERM', 'EACCES'].includes(errorCode(err) ?? '')) throw err;
  } finally {
    await handle?.close();
  }
}

/** Removes temp files an interrupted write left next to `file` (they never hold the committed state). */
async function removeTempFiles(file: string): Promise<void> {
  const prefix = `${basename(file)}${TEMP_INFIX}`;
  const dir = dirname(file);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return; // Creating the file reports a missing or unreadable directory.
  }
  await Promise.all(names.filter((n) => n.startsWith(prefix)).map((n) => unlink(join(dir, n)).catch(() => undefined)));
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code: unknown = Reflect.get(err, 'code');
  return typeof code === 'string' ? code : undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
