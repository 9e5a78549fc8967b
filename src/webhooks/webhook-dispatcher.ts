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
 * SSRF guard (url-guard.ts): before every attempt the URL's host is
 * resolved and each of its addresses checked; if any is blocked (loopback,
 * private, link-local/metadata, this server...) the delivery is refused
 * without a request and recorded as a failure at once, with the reason: a
 * refusal does not change by retrying. The request then connects to the
 * addresses that were checked (a `lookup` handed to node:http that answers
 * with them), never to a second resolution that could say something else;
 * the Host header and TLS SNI still carry the name. This is why deliveries
 * use node:http/https and not fetch: fetch cannot be told which address to
 * connect to.
 *
 * Configurations are read from the store at most every `configTtlMs`
 * (default 5 s) per tenant: a change on another node takes effect within
 * that; `invalidate(tenant)` makes one on this node take effect at once.
 */
import { randomUUID } from 'node:crypto';
import { lookup as dnsLookup } from 'node:dns/promises';
import { Agent as HttpAgent, request as httpRequest, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { CallListener, CallRecord } from '../call/call-tracker.js';
import type { Clock, TimerHandle } from '../sip/clock.js';
import type { Logger } from '../sip/logger.js';
import type { WebhookConfig, WebhookEvent, WebhookStore } from '../store/webhook-store.js';
import { SIGNATURE_HEADER, signatureHeader } from './webhook-signature.js';
import { WebhookUrlGuard, type HostLookup, type ResolvedAddress } from './url-guard.js';

export interface WebhookDispatcherOptions {
  store: WebhookStore;
  /** Backoff and request timeouts run on it; timestamps come from it. */
  clock: Clock;
  log: Logger;
  /** [0, 1), for the jitter. Default Math.random. */
  random?: () => number;
  /** Which destinations are refused. Default: the built-in blocked ranges, nothing allowed. */
  guard?: WebhookUrlGuard;
  /** Resolves a host name to every address. Default dns.lookup with all: true (tests fake DNS with it). */
  lookup?: HostLookup;
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
  readonly #guard: WebhookUrlGuard;
  readonly #lookup: HostLookup;
  /** Keep-alive pools: a connection stays bound to the address it was opened to, which was checked. */
  readonly #agents = { http: new HttpAgent({ keepAlive: true, timeout: 30_000 }), https: new HttpsAgent({ keepAlive: true, timeout: 30_000 }) };
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
    this.#guard = options.guard ?? new WebhookUrlGuard();
    this.#lookup = options.lookup ?? ((host) => dnsLookup(host, { all: true, verbatim: true }));
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
    this.#agents.http.destroy();
    this.#agents.https.destroy();
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
      // Resolution counts against the same timeout as the request.
      const target = await Promise.race([this.#guard.resolve(d.config.url, this.#lookup), aborted(abort.signal)]);
      if (!target.ok) return { ok: false, retry: false, error: `refused: ${target.reason}` };
      const status = await this.#post(target.url, target.addresses, abort.signal, {
        'content-type': 'application/json; charset=utf-8',
        'user-agent': 'Dialplane-Webhook/1',
        'x-dialplane-event': d.event,
        'x-dialplane-event-id': d.eventId,
        [SIGNATURE_HEADER]: signatureHeader(d.config.secret, d.body, t),
      }, d.body);
      if (status >= 200 && status < 300) return { ok: true };
      const retry = status === 408 || status === 429 || status >= 500;
      return { ok: false, retry, status, error: `HTTP ${status}` };
    } catch (err) {
      const error = abort.signal.aborted ? (this.#closed ? 'dispatcher closed' : `no answer within ${this.#o.timeoutMs} ms`) : describeError(err);
      return { ok: false, retry: true, error };
    } finally {
      timer.cancel();
      this.#aborts.delete(abort);
    }
  }

  /**
   * POSTs `body` to `url`, connecting only to `addresses` (already checked).
   * Resolves with the status once the response has been read to its end (so
   * the connection can be reused) or cut off; redirects are not followed.
   */
  #post(url: URL, addresses: readonly ResolvedAddress[], signal: AbortSignal, headers: Record<string, string>, body: string): Promise<number> {
    const https = url.protocol === 'https:';
    // Whatever node asks (one address, or all of them for happy eyeballs), it
    // gets the checked ones: no second DNS query between check and connect.
    const pinned: LookupFunction = (_host, options, callback) => {
      if (options.all) callback(null, addresses.map((a) => ({ address: a.address, family: a.family })));
      else callback(null, (addresses[0] as ResolvedAddress).address, (addresses[0] as ResolvedAddress).family);
    };
    const options: RequestOptions = {
      method: 'POST',
      // url.hostname keeps IPv6 brackets, which node:http does not want; a name goes in Host and SNI as it is.
      hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? (https ? 443 : 80) : Number(url.port),
      path: `${url.pathname}${url.search}`,
      headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      agent: https ? this.#agents.https : this.#agents.http,
      lookup: pinned,
      signal,
    };
    return new Promise<number>((resolve, reject) => {
      const req = (https ? httpsRequest : httpRequest)(options, (res) => {
        const status = res.statusCode ?? 0;
        // The body is of no use; it is drained, and once it ends or the
        // connection is cut (timeout, close) the status is what counts.
        res.on('close', () => resolve(status));
        res.on('error', () => resolve(status));
        res.resume();
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  #idle(): boolean {
    for (const q of this.#queues.values()) if (q.inFlight > 0 || q.resolving > 0 || q.pending.length > 0) return false;
    return true;
  }
}

/** Rejects when `signal` aborts (never resolves). */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) reject(new Error('aborted'));
    else signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
  });
}

function size(q: TenantQueue): number {
  return q.pending.length + q.resolving + q.inFlight + q.waiting;
}

/** The error's code and message (`ECONNREFUSED: connect ECONNREFUSED 203.0.113.5:443`); fetch-style errors keep theirs in `cause`. */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && !err.message.includes(code)) return `${code}: ${err.message}`;
  const cause = (err as { cause?: unknown }).cause;
  const detail = cause instanceof Error ? ((cause as { code?: string }).code ?? cause.message) : undefined;
  return detail !== undefined ? `${err.message}: ${detail}` : err.message;
}
