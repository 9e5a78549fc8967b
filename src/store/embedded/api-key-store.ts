/**
 * ApiKeyStore for a single box: records in memory, optionally persisted as
 * one JSON file next to the tenant store's (written atomically, mode 0600,
 * like the tenant file; see writeFileAtomic). Writes run one at a time, and
 * the in-memory state changes only after the file was written, so a failed
 * write changes nothing.
 *
 * A file that exists but cannot be read stops start-up (DP_STORE_BAD_FILE):
 * starting empty would silently revoke every key at the next write.
 * Records in the file that are not well-formed are skipped (and dropped at
 * the next write): a broken key must not stop the admin API.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { asApiKeyRecord, type ApiKeyRecord, type ApiKeyStore } from '../api-key-store.js';
import { StoreError } from '../store-error.js';
import { writeFileAtomic } from './tenant-store.js';

const FORMAT = 'dialplane-api-keys';

export interface EmbeddedApiKeyStoreOptions {
  /** Absent = memory only. */
  file?: string;
}

export class EmbeddedApiKeyStore implements ApiKeyStore {
  readonly #file: string | undefined;
  #records: ReadonlyMap<string, ApiKeyRecord>;
  #queue: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(file: string | undefined, records: Map<string, ApiKeyRecord>) {
    this.#file = file;
    this.#records = records;
  }

  static async open(options: EmbeddedApiKeyStoreOptions = {}): Promise<EmbeddedApiKeyStore> {
    if (options.file === undefined) return new EmbeddedApiKeyStore(undefined, new Map());
    const file = resolve(options.file);
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new StoreError('DP_STORE_BAD_FILE', `${file}: cannot be read: ${(err as Error).message}`, { cause: err });
      }
    }
    const records = new Map<string, ApiKeyRecord>();
    if (text !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        throw new StoreError('DP_STORE_BAD_FILE', `${file}: not JSON: ${(err as Error).message}`);
      }
      const p = parsed as { format?: unknown; keys?: unknown };
      if (typeof parsed !== 'object' || parsed === null || p.format !== FORMAT || !Array.isArray(p.keys)) {
        throw new StoreError('DP_STORE_BAD_FILE', `${file}: not an API key file (format ${FORMAT})`);
      }
      for (const k of p.keys) {
        const rec = asApiKeyRecord(k);
        if (rec) records.set(rec.id, rec);
      }
    }
    return new EmbeddedApiKeyStore(file, records);
  }

  async get(id: string): Promise<ApiKeyRecord | undefined> {
    this.#assertOpen();
    const r = this.#records.get(id);
    return r ? { ...r } : undefined;
  }

  create(record: ApiKeyRecord): Promise<boolean> {
    return this.#write((records) => {
      if (records.has(record.id)) return false;
      records.set(record.id, { ...record });
      return true;
    });
  }

  async list(tenant: string): Promise<ApiKeyRecord[]> {
    this.#assertOpen();
    return [...this.#records.values()].filter((r) => r.tenant === tenant)
      .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id)).map((r) => ({ ...r }));
  }

  delete(id: string): Promise<boolean> {
    return this.#write((records) => records.delete(id));
  }

  deleteTenant(tenant: string): Promise<number> {
    return this.#write((records) => {
      let n = 0;
      for (const [id, r] of records) if (r.tenant === tenant && records.delete(id)) n++;
      return n;
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
  }

  /** Runs `change` on a copy; commits (file, then memory) only if it changed something. */
  #write<T extends boolean | number>(change: (records: Map<string, ApiKeyRecord>) => T): Promise<T> {
    this.#assertOpen();
    const task = this.#queue.then(async () => {
      const next = new Map(this.#records);
      const result = change(next);
      if (result === false || result === 0) return result;
      if (this.#file !== undefined) {
        const text = `${JSON.stringify({ format: FORMAT, keys: [...next.values()] }, null, 1)}\n`;
        await writeFileAtomic(this.#file, text);
      }
      this.#records = next;
      return result;
    });
    this.#queue = task.then(() => undefined, () => undefined);
    return task;
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreError('DP_STORE_CLOSED', 'API key store is closed');
  }
}
