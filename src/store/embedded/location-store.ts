/**
 * In-process location service (RFC 3261 §10.3 bindings) for a single-node
 * deployment or tests: one Map entry per address of record.
 *
 * Atomicity comes from the event loop: `put` reads and writes the Map without
 * an `await` in between, so the compare-and-set the registrar relies on
 * ("binding updates MUST be committed ... if and only if all binding updates
 * and additions succeed", §10.3 step 8) cannot interleave with another writer.
 *
 * Memory: bindings carry absolute expiries, and §10.3 step 7 lets the
 * registrar drop a binding once "the expiration interval ... has passed". An
 * AOR whose bindings have all expired is deleted when it is next read (`get`,
 * `list`) and by a periodic `sweep`, so AORs that nobody looks up again do not
 * stay in the Map forever.
 */
import type { AorRecord, Binding, LocationService } from '../../sip/registrar/location-service.js';
import { latestExpiry, validBindings } from '../location-record.js';

/** Starts a repeating job and returns the function that stops it. */
export type IntervalScheduler = (job: () => void, intervalMs: number) => () => void;

export interface EmbeddedLocationStoreOptions {
  /** Clock for the background sweep, ms since the epoch. Default `Date.now`. */
  clock?: () => number;
  /**
   * How often the background sweep forgets fully expired AORs. `0` disables
   * the timer (reads still forget expired AORs). Default 60 s: registrations
   * last minutes to hours, so an AOR lingering a minute after its last
   * binding expired costs nothing, while a full pass over the Map each
   * minute stays cheap even for 10^5 AORs.
   */
  sweepIntervalMs?: number;
  /** Timer source, injectable so tests drive the sweep by hand. */
  scheduleInterval?: IntervalScheduler;
}

interface Entry {
  version: number;
  bindings: Binding[];
  /** Latest `expiresAt` among `bindings`; the AOR is dead once `now >= maxExpiresAt`. */
  maxExpiresAt: number;
}

const DEFAULT_SWEEP_INTERVAL_MS = 60_000;

/** Default scheduler: Node's setInterval, unref'd so the sweep never keeps the process alive. */
const nodeScheduleInterval: IntervalScheduler = (job, intervalMs) => {
  const handle = setInterval(job, intervalMs);
  handle.unref();
  return () => clearInterval(handle);
};

export class EmbeddedLocationStore implements LocationService {
  readonly #records = new Map<string, Entry>();
  readonly #clock: () => number;
  readonly #stopSweep: (() => void) | undefined;
  /**
   * Store-wide version counter. Versions are drawn from it rather than from
   * `entry.version + 1` so that an AOR which is forgotten and later
   * re-registered never gets a version it had before: otherwise a registrar
   * holding a record read before the AOR was forgotten could win a CAS
   * against a different, newer record that happens to carry the same number
   * (the ABA problem).
   */
  #lastVersion = 0;

  constructor(options: EmbeddedLocationStoreOptions = {}) {
    this.#clock = options.clock ?? Date.now;
    const intervalMs = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    if (!Number.isFinite(intervalMs) || intervalMs < 0) {
      throw new RangeError(`sweepIntervalMs must be a non-negative number, got ${intervalMs}`);
    }
    this.#stopSweep = intervalMs > 0
      ? (options.scheduleInterval ?? nodeScheduleInterval)(() => { this.sweep(this.#clock()); }, intervalMs)
      : undefined;
  }

  async get(aor: string, now: number): Promise<AorRecord> {
    const entry = this.#records.get(aor);
    if (entry === undefined) return { version: 0, bindings: [] };
    if (entry.maxExpiresAt <= now) {
      // Every binding has expired: forget the AOR. Version 0 is then what a
      // registrar must pass to `put`, exactly as for a never-written AOR.
      this.#records.delete(aor);
      return { version: 0, bindings: [] };
    }
    if (entry.bindings.some((b) => b.expiresAt <= now)) {
      // Drop expired bindings for good. This is not a change of the record
      // the registrar can observe (expired bindings are never returned), so
      // the version stays and a CAS based on an earlier read still holds.
      entry.bindings = entry.bindings.filter((b) => b.expiresAt > now);
    }
    // Stored bindings are frozen at `put`, so callers cannot edit the record
    // in place; a fresh array is enough (no deep copy on the per-call path).
    return { version: entry.version, bindings: entry.bindings.slice() };
  }

  async put(aor: string, expectedVersion: number, bindings: Binding[]): Promise<boolean> {
    // Validate (and copy) before comparing, so a malformed list throws
    // whether or not the version matches. No await from here on: the
    // compare and the write below are one atomic step.
    // validBindings copies; freezing the copies makes them safe to share with readers.
    const checked = validBindings(aor, bindings).map(freezeBinding);
    const entry = this.#records.get(aor);
    if ((entry?.version ?? 0) !== expectedVersion) return false;
    if (checked.length === 0) {
      this.#records.delete(aor);
      return true;
    }
    this.#lastVersion += 1;
    this.#records.set(aor, {
      version: this.#lastVersion,
      bindings: checked,
      maxExpiresAt: latestExpiry(checked),
    });
    return true;
  }

  async list(now: number): Promise<string[]> {
    this.sweep(now);
    return [...this.#records.keys()].sort();
  }

  /** Forgets every AOR whose bindings have all expired at `now`; returns how many. */
  sweep(now: number): number {
    let forgotten = 0;
    for (const [aor, entry] of this.#records) {
      // Deleting the current key while iterating a Map is well-defined.
      if (entry.maxExpiresAt <= now) {
        this.#records.delete(aor);
        forgotten += 1;
      }
    }
    return forgotten;
  }

  /** Number of AORs currently held, expired or not (metrics, leak tests). */
  get size(): number {
    return this.#records.size;
  }

  /** Stops the background sweep. The store stays usable. */
  close(): void {
    this.#stopSweep?.();
  }
}

function freezeBinding(b: Binding): Binding {
  Object.freeze(b.flow);
  Object.freeze(b.path);
  return Object.freeze(b);
}
