/**
 * Writes every finished call's record to the CdrStore, off the call path.
 *
 * The tracker's `ended` listener only pushes onto an in-memory queue; a
 * drain loop appends with a few writes in flight. A SIP call never waits on
 * Redis for its CDR, and a slow or absent store costs memory up to a bound,
 * never call handling.
 *
 * The bound: `maxQueue` records (default 10,000; ≈ 1 KB each in memory, so
 * ≈ 10 MB). At 100 calls/s that rides out 100 s of store outage. While the
 * queue is full, newly ended calls' records are dropped and counted
 * (`dropped`): the calls in the queue are older, and a later one has no
 * better claim.
 *
 * A failed append (store unreachable) puts its record back at the head and
 * pauses the drain for `retryMs`; the outage is logged once when it starts
 * and once when writes succeed again, not once per record. A record the
 * store refuses as malformed (DP_STORE_BAD_*) will never be accepted: it is
 * counted (`rejected`), logged, and not retried.
 *
 * `append(CallRecord)` compiling is the check that the tracker's record and
 * the store's CdrRecord stay in step (DESIGN.md: the store declares its own
 * shape rather than import from src/call).
 */
import type { CallListener, CallRecord } from '../call/call-tracker.js';
import type { Clock, TimerHandle } from '../sip/clock.js';
import type { Logger } from '../sip/logger.js';
import type { CdrStore } from '../store/cdr-store.js';
import { StoreError } from '../store/store-error.js';

export interface CdrWriterOptions {
  store: CdrStore;
  clock: Clock;
  log: Logger;
  /** Records waiting to be written, at most (default 10,000). */
  maxQueue?: number;
  /** Appends in flight at once (default 4). */
  concurrency?: number;
  /** Pause after a failed append before trying again (default 1 s). */
  retryMs?: number;
  /** Period of `store.trim()` (default 1 h; 0 = never). */
  trimEveryMs?: number;
  /** Longest `close()` waits for the queue to drain (default 2 s). */
  closeTimeoutMs?: number;
}

export interface CdrWriterStats {
  queued: number;
  written: number;
  /** Records lost because the queue was full. */
  dropped: number;
  /** Records the store refused as malformed. */
  rejected: number;
  /** Failed appends (each retried). */
  storeErrors: number;
}

interface Queued {
  readonly rec: Readonly<CallRecord>;
  /** Arrival order, to put failed appends back where they were. */
  readonly seq: number;
}

export interface CallEvents {
  listen(l: CallListener): () => void;
}

export class CdrWriter {
  readonly #o: Required<Omit<CdrWriterOptions, 'store' | 'clock' | 'log'>>;
  readonly #store: CdrStore;
  readonly #clock: Clock;
  readonly #log: Logger;
  /** FIFO; `#head` skips taken entries, compacted when mostly dead. */
  #queue: Queued[] = [];
  #head = 0;
  #seq = 0;
  #inFlight = 0;
  #paused = false;
  #outageSince: number | undefined;
  #droppedInOutage = 0;
  #retryTimer: TimerHandle | undefined;
  #trimTimer: TimerHandle | undefined;
  #closed = false;
  #idleWaiters: Array<() => void> = [];
  #unlisten: Array<() => void> = [];
  readonly #stats = { written: 0, dropped: 0, rejected: 0, storeErrors: 0 };

  constructor(options: CdrWriterOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#o = {
      maxQueue: options.maxQueue ?? 10_000,
      concurrency: options.concurrency ?? 4,
      retryMs: options.retryMs ?? 1000,
      trimEveryMs: options.trimEveryMs ?? 3_600_000,
      closeTimeoutMs: options.closeTimeoutMs ?? 2000,
    };
    for (const [name, v, min] of [['maxQueue', this.#o.maxQueue, 1], ['concurrency', this.#o.concurrency, 1], ['retryMs', this.#o.retryMs, 0], ['trimEveryMs', this.#o.trimEveryMs, 0]] as const) {
      if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`CdrWriter ${name} must be an integer ≥ ${min}, got ${v}`);
    }
    this.#scheduleTrim();
  }

  /** Subscribes to a tracker's `ended`; undone by close(). */
  listen(tracker: CallEvents): void {
    this.#unlisten.push(tracker.listen({ ended: (rec) => { this.enqueue(rec); } }));
  }

  /**
   * Queues a record; false when it was dropped (queue full, writer closed).
   * The tracker never changes a record after `ended`, so it is queued as is.
   */
  enqueue(rec: Readonly<CallRecord>): boolean {
    if (this.#closed) return false;
    if (this.size >= this.#o.maxQueue) {
      this.#stats.dropped++;
      if (this.#outageSince !== undefined) this.#droppedInOutage++;
      else if (this.#stats.dropped === 1 || this.#stats.dropped % 1000 === 0) {
        this.#log.warn({ dropped: this.#stats.dropped, maxQueue: this.#o.maxQueue }, 'CDR queue full: records dropped');
      }
      return false;
    }
    this.#queue.push({ rec, seq: this.#seq++ });
    this.#drain();
    return true;
  }

  /** Records queued or being written. */
  get size(): number {
    return this.#queue.length - this.#head + this.#inFlight;
  }

  stats(): CdrWriterStats {
    return { queued: this.size, ...this.#stats };
  }

  /** Resolves once every queued record is written (or refused); during an outage, once it is over. */
  flush(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => { this.#idleWaiters.push(resolve); });
  }

  /**
   * Stops listening and trimming; waits up to `closeTimeoutMs` for the queue
   * to drain, then gives up on what is left (logged with its count).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const u of this.#unlisten.splice(0)) u();
    this.#trimTimer?.cancel();
    let timer: TimerHandle | undefined;
    const timeout = new Promise<void>((resolve) => { timer = this.#clock.setTimer(this.#o.closeTimeoutMs, resolve); });
    await Promise.race([this.flush(), timeout]);
    timer?.cancel();
    this.#retryTimer?.cancel();
    const lost = this.#queue.length - this.#head;
    if (lost > 0) this.#log.warn({ lost }, 'CDR writer closed with records unwritten');
    this.#queue = [];
    this.#head = 0;
    this.#wakeIdle();
  }

  #drain(): void {
    while (!this.#paused && this.#inFlight < this.#o.concurrency && this.#head < this.#queue.length) {
      const item = this.#queue[this.#head] as Queued;
      this.#head++;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      this.#inFlight++;
      this.#store.append(item.rec).then(
        () => this.#written(),
        (err: unknown) => this.#failed(item, err),
      ).finally(() => {
        this.#inFlight--;
        this.#drain();
        if (this.size === 0) this.#wakeIdle();
      });
    }
  }

  #written(): void {
    this.#stats.written++;
    if (this.#outageSince !== undefined) {
      this.#log.info({ downForMs: this.#clock.now() - this.#outageSince, dropped: this.#droppedInOutage }, 'CDR store writable again');
      this.#outageSince = undefined;
      this.#droppedInOutage = 0;
    }
  }

  #failed(item: Queued, err: unknown): void {
    const rec = item.rec;
    if (err instanceof StoreError && err.code.startsWith('DP_STORE_BAD_')) {
      this.#stats.rejected++;
      this.#log.error({ err, callId: rec.callId, tenant: rec.tenant }, 'CDR refused by the store; not retried');
      return;
    }
    this.#stats.storeErrors++;
    if (this.#closed) return;
    // Back near the head, in its original order among the other failed
    // appends (they were in flight together), ahead of everything queued later.
    let at = this.#head;
    while (at < this.#queue.length && (this.#queue[at] as Queued).seq < item.seq) at++;
    this.#queue.splice(at, 0, item);
    if (this.#outageSince === undefined) {
      this.#outageSince = this.#clock.now();
      this.#log.warn({ err, queued: this.size }, 'CDR store unavailable; records are queued and retried');
    }
    if (!this.#paused) {
      this.#paused = true;
      this.#retryTimer = this.#clock.setTimer(this.#o.retryMs, () => {
        this.#paused = false;
        this.#drain();
      });
    }
  }

  #wakeIdle(): void {
    for (const w of this.#idleWaiters.splice(0)) w();
  }

  #scheduleTrim(): void {
    if (this.#o.trimEveryMs === 0 || this.#closed) return;
    this.#trimTimer = this.#clock.setTimer(this.#o.trimEveryMs, () => {
      this.#store.trim().catch((err: unknown) => this.#log.warn({ err }, 'CDR retention trim failed; next period retries'))
        .finally(() => this.#scheduleTrim());
    });
  }
}
