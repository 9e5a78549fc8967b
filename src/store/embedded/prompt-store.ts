/**
 * PromptStore for a single box: in memory, or as files when a directory is
 * given (main.ts: `<dir of DIALPLANE_STORE_FILE>/prompts`):
 *
 *   <dir>/<tenant>/<id>.wav    the audio exactly as uploaded
 *   <dir>/<tenant>/<id>.json   its description (PromptMeta, with the audio's SHA-256)
 *
 * A tenant id outside the `Id` pattern (the admin API never makes one) is
 * written `~<hex of its UTF-8>` so no id can climb out of the directory.
 *
 * Each file is replaced atomically (temp file, fsync, rename, directory
 * fsync: writeFileAtomic). The pair is not: the audio is written first and
 * the description last, so the description is the commit point. A crash in
 * between leaves a new audio file beside the old description; reads check
 * the audio against the description's SHA-256 and treat a mismatch as no
 * audio (re-upload to repair) rather than serve bytes under a version that
 * does not name them. Deletion removes the description first, for the same
 * reason.
 *
 * Descriptions live in memory (read at open); audio is read from disk per
 * request, so prompts cost no memory until played. Writes run one at a time,
 * which makes the version checks and quotas atomic within the process (the
 * embedded store is never shared between processes).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rmdir, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { StoreError } from '../store-error.js';
import {
  DEFAULT_PROMPT_LIMITS, PromptConflict, asPromptMeta, assertPromptId, assertPromptTenant, checkListOptions, compareIds, preparePut, quotaProblem,
  type PromptDescription, type PromptLimits, type PromptMeta, type PromptPage, type PromptPutOptions, type PromptStore,
} from '../prompt-store.js';
import { writeFileAtomic } from './tenant-store.js';
import { SerialQueue } from './serial-queue.js';

const FORMAT = 'dialplane-prompt';
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** writeFileAtomic's temp files: `<name>.tmp-<pid>-<12 hex>`. Real files end in .wav or .json. */
const TEMP_FILE = /\.tmp-[0-9]+-[0-9a-f]{12}$/;

export interface EmbeddedPromptStoreOptions {
  /** Absent = memory only. */
  dir?: string;
  /** Clock of `updatedAt`. Default Date.now. */
  now?: () => number;
  /** Default DEFAULT_PROMPT_LIMITS. */
  limits?: PromptLimits;
}

interface Entry {
  meta: PromptMeta;
  /** Memory mode only. */
  audio?: Buffer;
}

export function tenantDirName(tenant: string): string {
  return SAFE_NAME.test(tenant) ? tenant : `~${Buffer.from(tenant, 'utf8').toString('hex')}`;
}

function tenantOfDirName(name: string): string | undefined {
  if (SAFE_NAME.test(name)) return name;
  if (!/^~(?:[0-9a-f]{2})+$/.test(name)) return undefined;
  const tenant = Buffer.from(name.slice(1), 'hex').toString('utf8');
  // Only the encoding this store writes: anything else in the directory is not ours.
  return tenantDirName(tenant) === name ? tenant : undefined;
}

export class EmbeddedPromptStore implements PromptStore {
  readonly #dir: string | undefined;
  readonly #now: () => number;
  readonly #limits: PromptLimits;
  readonly #tenants: Map<string, Map<string, Entry>>;
  /** File tasks, one at a time. */
  readonly #queue = new SerialQueue();
  #closed = false;

  private constructor(dir: string | undefined, options: EmbeddedPromptStoreOptions, tenants: Map<string, Map<string, Entry>>) {
    this.#dir = dir;
    this.#now = options.now ?? Date.now;
    this.#limits = options.limits ?? DEFAULT_PROMPT_LIMITS;
    this.#tenants = tenants;
  }

  /**
   * Opens the store: creates the directory, removes temp files a crash
   * left, and reads every description whose audio file is there with the
   * size it names (anything else is skipped, not deleted: an operator may
   * want to look at it). An unreadable directory stops start-up.
   */
  static async open(options: EmbeddedPromptStoreOptions = {}): Promise<EmbeddedPromptStore> {
    if (options.dir === undefined) return new EmbeddedPromptStore(undefined, options, new Map());
    const dir = resolve(options.dir);
    const tenants = new Map<string, Map<string, Entry>>();
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      for (const sub of await readdir(dir, { withFileTypes: true })) {
        const tenant = sub.isDirectory() ? tenantOfDirName(sub.name) : undefined;
        if (tenant === undefined) continue;
        const tdir = join(dir, sub.name);
        const names = await readdir(tdir);
        await Promise.all(names.filter((n) => TEMP_FILE.test(n)).map((n) => unlink(join(tdir, n)).catch(() => undefined)));
        const entries = new Map<string, Entry>();
        for (const name of names) {
          if (!name.endsWith('.json')) continue;
          const id = name.slice(0, -'.json'.length);
          if (!SAFE_NAME.test(id)) continue;
          const meta = await readMeta(join(tdir, name), id);
          const size = await stat(join(tdir, `${id}.wav`)).then((s) => s.size, () => -1);
          if (meta && size === meta.bytes) entries.set(id, { meta });
        }
        if (entries.size > 0) tenants.set(tenant, entries);
      }
    } catch (err) {
      throw new StoreError('DP_STORE_BAD_FILE', `prompt directory ${dir} cannot be read: ${(err as Error).message}`, { cause: err });
    }
    return new EmbeddedPromptStore(dir, options, tenants);
  }

  // async: a refused argument is a rejection, like every other failure of the store.
  async put(tenant: string, id: string, prompt: { audio: Uint8Array; meta: PromptDescription }, opts: PromptPutOptions = {}): Promise<{ meta: PromptMeta; created: boolean }> {
    this.#assertOpen();
    const meta = preparePut(tenant, id, prompt, this.#now());
    // Our own copy now: the caller may reuse its buffer while the write waits its turn.
    const audio = Buffer.from(prompt.audio);
    return this.#queue.run(async () => {
      const entries = this.#tenants.get(tenant);
      const current = entries?.get(id);
      if (opts.ifAbsent && current) throw new PromptConflict(id, current.meta.version);
      if (opts.ifVersion !== undefined && current?.meta.version !== opts.ifVersion) throw new PromptConflict(id, current?.meta.version);
      let total = 0;
      for (const e of entries?.values() ?? []) total += e.meta.bytes;
      const problem = quotaProblem(this.#limits, entries?.size ?? 0, total, current?.meta.bytes, meta.bytes);
      if (problem !== undefined) throw new StoreError('DP_STORE_PROMPT_QUOTA', problem);
      if (this.#dir !== undefined) {
        const tdir = join(this.#dir, tenantDirName(tenant));
        await mkdir(tdir, { recursive: true, mode: 0o700 });
        await writeFileAtomic(join(tdir, `${id}.wav`), audio);
        await writeFileAtomic(join(tdir, `${id}.json`), `${JSON.stringify({ format: FORMAT, ...meta }, null, 1)}\n`);
      }
      const next = entries ?? new Map<string, Entry>();
      next.set(id, this.#dir === undefined ? { meta, audio } : { meta });
      this.#tenants.set(tenant, next);
      return { meta: { ...meta }, created: current === undefined };
    });
  }

  async getMeta(tenant: string, id: string): Promise<PromptMeta | undefined> {
    this.#assertOpen();
    assertPromptTenant(tenant);
    assertPromptId(id);
    const e = this.#tenants.get(tenant)?.get(id);
    return e ? { ...e.meta } : undefined;
  }

  async getAudio(tenant: string, id: string): Promise<{ meta: PromptMeta; audio: Buffer } | undefined> {
    this.#assertOpen();
    assertPromptTenant(tenant);
    assertPromptId(id);
    const e = this.#tenants.get(tenant)?.get(id);
    if (!e) return undefined;
    if (e.audio) return { meta: { ...e.meta }, audio: Buffer.from(e.audio) };
    const meta = e.meta;
    let audio: Buffer;
    try {
      audio = await readFile(join(this.#dir as string, tenantDirName(tenant), `${id}.wav`));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    // A replacement interrupted between its two renames, or an edit behind the store's back.
    if (createHash('sha256').update(audio).digest('hex') !== meta.sha256) return undefined;
    return { meta: { ...meta }, audio };
  }

  async list(tenant: string, opts: { limit: number; after?: string }): Promise<PromptPage> {
    this.#assertOpen();
    assertPromptTenant(tenant);
    checkListOptions(opts);
    const ids = [...(this.#tenants.get(tenant)?.keys() ?? [])].sort(compareIds)
      .filter((id) => opts.after === undefined || compareIds(id, opts.after) > 0);
    const page = ids.slice(0, opts.limit);
    const items = page.flatMap((id) => { const e = this.#tenants.get(tenant)?.get(id); return e ? [{ ...e.meta }] : []; });
    const last = page[page.length - 1];
    return ids.length > opts.limit && last !== undefined ? { items, nextAfter: last } : { items };
  }

  async delete(tenant: string, id: string, opts: { ifVersion?: string } = {}): Promise<boolean> {
    this.#assertOpen();
    assertPromptTenant(tenant);
    assertPromptId(id);
    return this.#queue.run(async () => {
      const entries = this.#tenants.get(tenant);
      const current = entries?.get(id);
      if (!entries || !current) return false;
      if (opts.ifVersion !== undefined && current.meta.version !== opts.ifVersion) throw new PromptConflict(id, current.meta.version);
      if (this.#dir !== undefined) await this.#removeFiles(tenant, [id]);
      entries.delete(id);
      if (entries.size === 0) this.#tenants.delete(tenant);
      return true;
    });
  }

  async deleteTenant(tenant: string): Promise<number> {
    this.#assertOpen();
    assertPromptTenant(tenant);
    return this.#queue.run(async () => {
      const entries = this.#tenants.get(tenant);
      if (!entries) return 0;
      if (this.#dir !== undefined) {
        await this.#removeFiles(tenant, [...entries.keys()]);
        await rmdir(join(this.#dir, tenantDirName(tenant))).catch(() => undefined);
      }
      this.#tenants.delete(tenant);
      return entries.size;
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue.idle();
    this.#tenants.clear();
  }

  async #removeFiles(tenant: string, ids: readonly string[]): Promise<void> {
    const tdir = join(this.#dir as string, tenantDirName(tenant));
    const gone = (p: Promise<void>): Promise<void> => p.catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err; });
    for (const id of ids) {
      // Description first: once it is gone the prompt is gone, whatever happens to the audio file.
      await gone(unlink(join(tdir, `${id}.json`)));
      await gone(unlink(join(tdir, `${id}.wav`)));
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreError('DP_STORE_CLOSED', 'the prompt store is closed');
  }
}

async function readMeta(file: string, id: string): Promise<PromptMeta | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    return parsed.format === FORMAT ? asPromptMeta(parsed, id) : undefined;
  } catch {
    return undefined;
  }
}
