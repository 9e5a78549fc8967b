/**
 * Delivers call events to tenants' webhooks (来电弹屏 on `ringing`, 漏话短信
 * on `missed`, CRM logging on `ended`...).
 *
 * Call processing never waits for it: the tracker's listeners only build the
 * JSON body (a snapshot: the record goes on changing) and queue it. Per
 * tenant, a bounded queue (`maxQueuePerTenant`, default 1,000 deliveries
 * counting those waiting to retry) and at most `concurrencyPerTenant`
 * requests in flight, so one tenant's slow endpoint can neither exhaust
 * memory nor delay another tenant's deliveries. When a tenant's queue is
 * full, new events for it are dropped and counted (logged once per episode).
 *
 * A delivery is a POST with the JSON body, signed (webhook-signature.ts),
 * answered within `timeoutMs` (default 5 s). 2xx is success. A network
 * error, a timeout, 408, 429 or 5xx is retried with exponential backoff and
 * jitter up to `maxAttempts` (default 5: about 1+2+4+8 s of waiting, capped
 * at `maxDelayMs`); any other status (redirects included: a webhook URL must
 * be the endpoint itself) will not change by retrying and fails at once. A
 * delivery that finally fails is recorded in the store (`failures()`), for
 * the admin API.
 *
 * Events: `ringing`, `answered`, `ended`, and `missed` = ended without an
 * answer (sent in addition to `ended`). Every webhook of the tenant
 * subscribed to an event gets its own delivery, with the same body and
 * `eventId` (receivers deduplicate retries by it). Deliveries of one call's
 * events may arrive out of order (retries, parallel requests): receivers
 * order by the timestamps in the body.
 *
 * Configurations are read from the store at most every `configTtlMs`
 * (default 5 s) per tenant: a change on another node takes effect within
 * that; `invalidate(tenant)` makes one on this node take effect at once.
 */
import { randomUUID } from 'node:crypto';
import type { CallListener, CallRecord } from '../call/call-tracker.js';
import type { Clock, TimerHandle } from '../sip/clock.js';
import type { Logger } from '../sip/logger.js';
import type { WebhookConfig, WebhookEvent, WebhookStore } from '../store/webhook-store.js';
import { SIGNATURE_HEADER, signatureHeader } from './webhook-signature.js';

export interface WebhookDispatcherOptions {
  store: WebhookStore;
  /** Backoff and request timeouts run on it; timestamps come from it. */
  clock: Clock;
  log: Logger;
  /** [0, 1), for the jitter. Default Math.random. */
  random?: () => number;
  /** Default: the global fetch. */
  fetch?: typeof fetch;
  timeoutMs?: number;
  maxAttempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  maxQueuePerTenant?: number;
  concurrencyPerTenant?: number;
  configTtlMs?: number;
}

/** The JSON body of every delivery. Absent values are null, so the shape is the same for every event. */
export interface WebhookPayload {
  eventId: string;
  event: WebhookEvent;
  /** Epoch ms of the event itself (ringingAt, answeredAt or endedAt). */
  occurredAt: number;
  callId: string;
  tenant: string;
  called: string;
  caller: string | null;
  callerRegion: { province: string | null; city: string | null } | null;
  startedAt: number;
  ringingAt: number | null;
  answeredAt: number | null;
  endedAt: number | null;
  disposition: string | null;
  finalStatus: number | null;
}

export interface WebhookDispatcherStats {
  /** Deliveries queued, in flight or waiting to retry, all tenants. */
  queued: number;
  delivered: number;
  /** Deliveries that failed for good (recorded in the store). */
  failed: number;
  /** Attempts that failed and were scheduled again. */
  retried: number;
  /** Events dropped because their tenant's queue was full. */
  dropped: number;
  /** Events lost because the tenant's configuration could not be read. */
  configErrors: number;
}

interface Delivery {
  readonly config: WebhookConfig;
  readonly tenant: string;
  readonly event: WebhookEvent;
  readonly eventId: string;
  readonly callId: string;
  readonly body: string;
  attempts: number;
}

interface TenantQueue {
  pending: Delivery[];
  resolving: number;
  inFlight: number;
  waiting: number;
  overflowing: boolean;
}

type Outcome = { ok: true } | { ok: false; retry: boolean; status?: number; error: string };

/** Delay before attempt `attempt + 1` after `attempt` failed: exponential, capped, half of it random. */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export function buildPayload(event: WebhookEvent, rec: Readonly<CallRecord>, eventId: string, now: number): WebhookPayload {
  const occurredAt = (event === 'ringing' ? rec.ringingAt : event === 'answered' ? rec.answeredAt : rec.endedAt) ?? now;
  return {
    eventId, event, occurredAt,
    callId: rec.callId, tenant: rec.tenant, called: rec.called, caller: rec.caller ?? null,
    callerRegion: rec.callerRegion ? { province: rec.callerRegion.province ?? null, city: rec.callerRegion.city ?? null } : null,
    startedAt: rec.startedAt, ringingAt: rec.ringingAt ?? null, answeredAt: rec.answeredAt ?? null, endedAt: rec.endedAt ?? null,
    disposition: rec.disposition ?? null, finalStatus: rec.finalStatus ?? null,
  };
}

export class WebhookDispatcher {
  readonly #store: WebhookStore;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #random: () => number;
  readonly #fetch: typeof fetch;
  readonly #o: Required<Pick<WebhookDispatcherOptions, 'timeoutMs' | 'maxAttempts' | 'baseDelayMs' | 'maxDelayMs' | 'maxQueuePerTenant' | 'concurrencyPerTenant' | 'configTtlMs'>>;
  readonly #queues = new Map<string, TenantQueue>();
  readonly #cache = new Map<string, { at: number; configs: Promise<WebhookConfig[]> }>();
  /** Configurations as last resolved, read synchronously by the fast path of dispatch(). */
  readonly #resolved = new Map<string, { at: number; list: readonly WebhookConfig[] }>();
  readonly #timers = new Set<TimerHandle>();
  readonly #aborts = new Set<AbortController>();
  readonly #stats = { delivered: 0, failed: 0, retried: 0, dropped: 0, configErrors: 0 };
  #configOutage = false;
  #idleWaiters: Array<() => void> = [];
  #unlisten: Array<() => void> = [];
  #closed = false;

  constructor(options: WebhookDispatcherOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#random = options.random ?? Math.random;
    this.#fetch = options.fetch ?? fetch;
    this.#o = {
      timeoutMs: options.timeoutMs ?? 5000,
      maxAttempts: options.maxAttempts ?? 5,
      baseDelayMs: options.baseDelayMs ?? 1000,
      maxDelayMs: options.maxDelayMs ?? 60_000,
      maxQueuePerTenant: options.maxQueuePerTenant ?? 1000,
      concurrencyPerTenant: options.concurrencyPerTenant ?? 4,
      configTtlMs: options.configTtlMs ?? 5000,
    };
    for (const [name, v] of Object.entries(this.#o)) {
      if (!Number.isSafeInteger(v) || v < (name === 'configTtlMs' || name === 'baseDelayMs' ? 0 : 1)) throw new RangeError(`WebhookDispatcher ${name} must be a positive integer, got ${v}`);
    }
  }

  /** Subscribes to a tracker's events; undone by close(). */
  listen(tracker: { listen(l: CallListener): () => void }): void {
    this.#unlisten.push(tracker.listen({
      ringing: (rec) => this.dispatch('ringing', rec),
      answered: (rec) => this.dispatch('answered', rec),
      ended: (rec) => {
        this.dispatch('ended', rec);
        if (rec.answeredAt === undefined) this.dispatch('missed', rec);
      },
    }));
  }

  /** Queues `event` of `rec` for the tenant's webhooks; false when dropped (queue full, closed). */
  dispatch(event: WebhookEvent, rec: Readonly<CallRecord>): boolean {
    if (this.#closed) return false;
    const q = this.#queue(rec.tenant);
    if (size(q) >= this.#o.maxQueuePerTenant) {
      this.#stats.dropped++;
      if (!q.overflowing) {
        q.overflowing = true;
        this.#log.warn({ tenant: rec.tenant, maxQueue: this.#o.maxQueuePerTenant }, 'webhook queue full: events dropped until it drains');
      }
      return false;
    }
    const { tenant, callId } = rec;
    // Fast path, taken by nearly every call: the tenant's configurations are
    // known and none wants this event: no id, no payload, no promise.
    const known = this.#resolved.get(tenant);
    const now = this.#clock.now();
    if (known !== undefined && now - known.at < this.#o.configTtlMs && !known.list.some((c) => c.enabled && c.events.includes(event))) return true;
    // The payload is built now: the record keeps changing after this event.
    const eventId = randomUUID();
    const body = JSON.stringify(buildPayload(event, rec, eventId, now));
    q.resolving++;
    this.#configs(tenant).then(
      (configs) => {
        this.#resolved.set(tenant, { at: now, list: configs });
        for (const config of configs) {
          if (config.enabled && config.events.includes(event)) q.pending.push({ config, tenant, event, eventId, callId, body, attempts: 0 });
        }
      },
      () => { this.#stats.configErrors++; },
    ).finally(() => {
      q.resolving--;
      this.#pump(q);
    });
    return true;
  }

  /** Forget a tenant's cached configurations (after the admin API changed them on this node). */
  invalidate(tenant: string): void {
    this.#cache.delete(tenant);
    this.#resolved.delete(tenant);
  }

  stats(): WebhookDispatcherStats {
    let queued = 0;
    for (const q of this.#queues.values()) queued += size(q);
    return { queued, ...this.#stats };
  }

  /** Resolves when no request is in flight or ready to send (deliveries may still wait for a retry). */
  whenIdle(): Promise<void> {
    if (this.#idle()) return Promise.resolve();
    return new Promise((resolve) => { this.#idleWaiters.push(resolve); });
  }

  /** Stops listening, abandons retries and aborts requests in flight. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const u of this.#unlisten.splice(0)) u();
    for (const t of this.#timers) t.cancel();
    this.#timers.clear();
    for (const q of this.#queues.values()) { q.pending = []; q.waiting = 0; }
    for (const a of this.#aborts) a.abort();
    await this.whenIdle();
  }

  #queue(tenant: string): TenantQueue {
    let q = this.#queues.get(tenant);
    if (q === undefined) {
      q = { pending: [], resolving: 0, inFlight: 0, waiting: 0, overflowing: false };
      this.#queues.set(tenant, q);
    }
    return q;
  }

  #configs(tenant: string): Promise<WebhookConfig[]> {
    const now = this.#clock.now();
    const cached = this.#cache.get(tenant);
    if (cached !== undefined && now - cached.at < this.#o.configTtlMs) return cached.configs;
    const configs = this.#store.list(tenant).then(
      (list) => {
        if (this.#configOutage) {
          this.#configOutage = false;
          this.#log.info({}, 'webhook configurations readable again');
        }
        return list;
      },
      (err: unknown) => {
        // Not cached: the next event asks the store again.
        if (this.#cache.get(tenant)?.configs === configs) this.#cache.delete(tenant);
        if (!this.#configOutage) {
          this.#configOutage = true;
          this.#log.warn({ err, tenant }, 'webhook configurations unreadable; events are dropped until the store answers');
        }
        throw err;
      },
    );
    this.#cache.set(tenant, { at: now, configs });
    return configs;
  }

  #pump(q: TenantQueue): void {
    while (!this.#closed && q.inFlight < this.#o.concurrencyPerTenant && q.pending.length > 0) {
      const d = q.pending.shift() as Delivery;
      q.inFlight++;
      void this.#attempt(d).then((outcome) => {
        q.inFlight--;
        this.#settle(q, d, outcome);
        this.#pump(q);
        if (q.overflowing && size(q) <= this.#o.maxQueuePerTenant / 2) q.overflowing = false;
        if (this.#idle()) for (const w of this.#idleWaiters.splice(0)) w();
      });
    }
    if (this.#idle()) for (const w of this.#idleWaiters.splice(0)) w();
  }

  #settle(q: TenantQueue, d: Delivery, outcome: Outcome): void {
    if (outcome.ok) {
      this.#stats.delivered++;
      return;
    }
    if (this.#closed) return;
    if (outcome.retry && d.attempts < this.#o.maxAttempts) {
      this.#stats.retried++;
      q.waiting++;
      const timer = this.#clock.setTimer(retryDelayMs(d.attempts, this.#o.baseDelayMs, this.#o.maxDelayMs, this.#random), () => {
        this.#timers.delete(timer);
        q.waiting--;
        q.pending.push(d);
        this.#pump(q);
      });
      this.#timers.add(timer);
      return;
    }
    this.#stats.failed++;
    this.#log.warn({ tenant: d.tenant, webhook: d.config.id, event: d.event, attempts: d.attempts, status: outcome.status, error: outcome.error }, 'webhook delivery failed');
    this.#store.recordFailure(d.tenant, d.config.id, {
      at: this.#clock.now(), event: d.event, eventId: d.eventId, callId: d.callId, attempts: d.attempts,
      ...(outcome.status !== undefined ? { status: outcome.status } : {}), error: outcome.error,
    }).catch((err: unknown) => this.#log.warn({ err, tenant: d.tenant, webhook: d.config.id }, 'webhook failure could not be recorded'));
  }

  async #attempt(d: Delivery): Promise<Outcome> {
    d.attempts++;
    const abort = new AbortController();
    this.#aborts.add(abort);
    const timer = this.#clock.setTimer(this.#o.timeoutMs, () => abort.abort());
    const t = Math.floor(this.#clock.now() / 1000);
    try {
      const res = await this.#fetch(d.config.url, {
        method: 'POST',
        body: d.body,
        redirect: 'manual',
        signal: abort.signal,
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'user-agent': 'Dialplane-Webhook/1',
          'x-dialplane-event': d.event,
          'x-dialplane-event-id': d.eventId,
          [SIGNATURE_HEADER]: signatureHeader(d.config.secret, d.body, t),
        },
      });
      // The body is of no use; reading it to the end frees the connection for reuse.
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) return { ok: true };
      const retry = res.status === 408 || res.status === 429 || res.status >= 500;
      return { ok: false, retry, status: res.status, error: `HTTP ${res.status}` };
    } catch (err) {
      const error = abort.signal.aborted ? (this.#closed ? 'dispatcher closed' : `no answer within ${this.#o.timeoutMs} ms`) : describeError(err);
      return { ok: false, retry: true, error };
    } finally {
      timer.cancel();
      this.#aborts.delete(abort);
    }
  }

  #idle(): boolean {
    for (const q of this.#queues.values()) if (q.inFlight > 0 || q.resolving > 0 || q.pending.length > 0) return false;
    return true;
  }
}

function size(q: TenantQueue): number {
  return q.pending.length + q.resolving + q.inFlight + q.waiting;
}

/** fetch's TypeError hides the reason in `cause` (ECONNREFUSED, ENOTFOUND...). */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  const detail = cause instanceof Error ? ((cause as { code?: string }).code ?? cause.message) : undefined;
  return detail !== undefined ? `${err.message}: ${detail}` : err.message;
}
