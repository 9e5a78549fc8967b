/**
 * Prometheus metrics (prom-client), in a registry of our own rather than
 * prom-client's global one, so tests and several servers in one process do
 * not share counters.
 *
 * Lower layers do not import this module (see eslint.config.js): they get
 * plain functions (`countSipMessage`, `observeRouting`, `countRedisError`)
 * or are read through callbacks at scrape time (active calls, registrations,
 * CDR and webhook queues), which cost nothing between scrapes.
 *
 * Label values are bounded: SIP methods outside the known list count as
 * `other`, statuses outside 100-699 as `invalid`. Tenants are not a label:
 * their number is unbounded, and per-tenant figures are what the CDR
 * reports are for.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CallListener, CallRecord } from '../call/call-tracker.js';

const SIP_METHODS = new Set(['INVITE', 'ACK', 'BYE', 'CANCEL', 'REGISTER', 'OPTIONS', 'INFO', 'UPDATE', 'PRACK', 'SUBSCRIBE', 'NOTIFY', 'REFER', 'MESSAGE', 'PUBLISH']);

export interface MetricsOptions {
  /** Node process metrics (CPU, heap, event loop lag...). Default true. */
  processMetrics?: boolean;
}

export interface CallSource {
  listen(l: CallListener): () => void;
  list(): ReadonlyArray<Readonly<CallRecord>>;
}

export interface QueueStats {
  queued: number;
  dropped: number;
}

export class DialplaneMetrics {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  readonly #calls: Counter<'disposition'>;
  /**
   * SIP message counts by label set, handed to the counter when it is
   * scraped: countSipMessage runs for every SIP message, and Counter.inc
   * hashes its label object on each call. Bounded: ~15 methods and 600
   * statuses, two directions.
   */
  readonly #sipCounts = new Map<string, { labels: { kind: string; value: string; direction: string }; n: number; reported: number }>();
  readonly #routing: Histogram;
  readonly #redisErrors: Counter;
  #activeCalls: () => number = () => 0;
  #registrations: (() => number | Promise<number>) | undefined;
  #cdr: (() => QueueStats) | undefined;
  #webhooks: (() => QueueStats) | undefined;
  #unlisten: Array<() => void> = [];

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'dialplane_' });
    this.#calls = new Counter({ name: 'dialplane_calls_total', help: 'Calls ended, by disposition', labelNames: ['disposition'], registers });
    const sipCounts = this.#sipCounts;
    new Counter({
      name: 'dialplane_sip_messages_total', help: 'SIP messages, requests by method and responses by status',
      labelNames: ['kind', 'value', 'direction'], registers,
      collect() {
        for (const c of sipCounts.values()) {
          if (c.n > c.reported) this.inc(c.labels, c.n - c.reported);
          c.reported = c.n;
        }
      },
    });
    // Routing is pure CPU work on compiled rules: microseconds normally, so the buckets start low.
    this.#routing = new Histogram({
      name: 'dialplane_routing_evaluation_seconds', help: 'Time to evaluate the routing rules of one call',
      buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05], registers,
    });
    this.#redisErrors = new Counter({ name: 'dialplane_redis_errors_total', help: 'Redis client errors (connection and command)', registers });
    // prom-client calls `collect` with the gauge as `this`; the sources are read through these arrows.
    const activeCalls = (): number => this.#activeCalls();
    const registrations = (): (() => number | Promise<number>) | undefined => this.#registrations;
    const queues = (): Array<[string, QueueStats]> => [
      ...(this.#cdr ? [['cdr', this.#cdr()] as [string, QueueStats]] : []),
      ...(this.#webhooks ? [['webhook', this.#webhooks()] as [string, QueueStats]] : []),
    ];
    new Gauge({
      name: 'dialplane_active_calls', help: 'Calls in progress on this node', registers,
      collect() { this.set(activeCalls()); },
    });
    new Gauge({
      name: 'dialplane_registrations', help: 'Registered contacts (when a source is set)', registers,
      async collect() {
        const source = registrations();
        if (source) this.set(await source());
      },
    });
    new Gauge({
      name: 'dialplane_queue_length', help: 'Records waiting in the CDR writer and webhook queues', labelNames: ['queue'], registers,
      collect() { for (const [queue, s] of queues()) this.set({ queue }, s.queued); },
    });
    new Gauge({
      name: 'dialplane_queue_dropped', help: 'Records dropped because a queue was full, since start', labelNames: ['queue'], registers,
      collect() { for (const [queue, s] of queues()) this.set({ queue }, s.dropped); },
    });
  }

  /** Counts calls by disposition as they end; active calls are read from the tracker at scrape time. */
  trackCalls(tracker: CallSource): void {
    this.#activeCalls = () => tracker.list().length;
    this.#unlisten.push(tracker.listen({ ended: (rec) => { this.#calls.inc({ disposition: rec.disposition ?? 'unknown' }); } }));
  }

  /** Hook for the registrar: the number of registered contacts, read at scrape time. */
  setRegistrationsSource(source: () => number | Promise<number>): void {
    this.#registrations = source;
  }

  /** Queue lengths and drop counts of the CDR writer and webhook dispatcher, read at scrape time. */
  setQueueSources(sources: { cdr?: () => QueueStats; webhooks?: () => QueueStats }): void {
    this.#cdr = sources.cdr;
    this.#webhooks = sources.webhooks;
  }

  /**
   * For the transport layer: a request's method (string) or a response's
   * status (number). Anything else is counted, under a bounded label.
   */
  countSipMessage(methodOrStatus: string | number, direction: 'in' | 'out' = 'in'): void {
    let kind: 'request' | 'response';
    let value: string;
    if (typeof methodOrStatus === 'number') {
      const ok = Number.isInteger(methodOrStatus) && methodOrStatus >= 100 && methodOrStatus <= 699;
      kind = 'response';
      value = ok ? String(methodOrStatus) : 'invalid';
    } else {
      const method = typeof methodOrStatus === 'string' ? methodOrStatus.toUpperCase() : '';
      kind = 'request';
      value = SIP_METHODS.has(method) ? method : 'other';
    }
    const key = `${kind} ${value} ${direction}`;
    const c = this.#sipCounts.get(key);
    if (c !== undefined) c.n++;
    else this.#sipCounts.set(key, { labels: { kind, value, direction }, n: 1, reported: 0 });
  }

  /** Hook for the call executor: one routing evaluation took `seconds`. */
  observeRouting(seconds: number): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.#routing.observe(seconds);
  }

  /** Hook for the Redis client's `error` events. */
  countRedisError(): void {
    this.#redisErrors.inc();
  }

  /** The text exposition format, for GET /metrics. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  close(): void {
    for (const u of this.#unlisten.splice(0)) u();
    this.registry.clear();
  }
}
