/**
 * WebhookStore in memory, for a single box. Not persisted: webhooks
 * configured without Redis are lost at restart (see the README).
 * Everything is kept as JSON text, so callers always get copies.
 */
import { StoreError } from '../store-error.js';
import { assertTenantId } from '../tenant-record.js';
import {
  MAX_FAILURES_PER_WEBHOOK, MAX_WEBHOOKS_PER_TENANT, assertWebhookId, checkPut, decodeJson, encodeFailure,
  type WebhookConfig, type WebhookFailure, type WebhookStore,
} from '../webhook-store.js';

interface Stored {
  json: string;
  /** Newest first. */
  failures: string[];
}

export class EmbeddedWebhookStore implements WebhookStore {
  readonly #tenants = new Map<string, Map<string, Stored>>();
  #closed = false;

  async list(tenant: string): Promise<WebhookConfig[]> {
    this.#open();
    assertTenantId(tenant);
    const hooks = this.#tenants.get(tenant);
    if (hooks === undefined) return [];
    return [...hooks.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .flatMap(([, s]) => { const c = decodeJson<WebhookConfig>(s.json); return c ? [c] : []; });
  }

  async get(tenant: string, id: string): Promise<WebhookConfig | undefined> {
    this.#open();
    assertTenantId(tenant);
    assertWebhookId(id);
    return decodeJson<WebhookConfig>(this.#tenants.get(tenant)?.get(id)?.json);
  }

  async put(tenant: string, config: WebhookConfig): Promise<void> {
    this.#open();
    const json = checkPut(tenant, config);
    let hooks = this.#tenants.get(tenant);
    if (hooks === undefined) {
      hooks = new Map();
      this.#tenants.set(tenant, hooks);
    }
    const existing = hooks.get(config.id);
    if (existing === undefined && hooks.size >= MAX_WEBHOOKS_PER_TENANT) {
      throw new StoreError('DP_STORE_BAD_WEBHOOK', `a tenant has at most ${MAX_WEBHOOKS_PER_TENANT} webhooks`);
    }
    hooks.set(config.id, { json, failures: existing?.failures ?? [] });
  }

  async delete(tenant: string, id: string): Promise<boolean> {
    this.#open();
    assertTenantId(tenant);
    assertWebhookId(id);
    const hooks = this.#tenants.get(tenant);
    const had = hooks?.delete(id) ?? false;
    if (hooks?.size === 0) this.#tenants.delete(tenant);
    return had;
  }

  async recordFailure(tenant: string, id: string, failure: WebhookFailure): Promise<void> {
    this.#open();
    assertTenantId(tenant);
    assertWebhookId(id);
    const json = encodeFailure(failure);
    const stored = this.#tenants.get(tenant)?.get(id);
    if (stored === undefined) return;
    stored.failures.unshift(json);
    stored.failures.length = Math.min(stored.failures.length, MAX_FAILURES_PER_WEBHOOK);
  }

  async failures(tenant: string, id: string): Promise<WebhookFailure[]> {
    this.#open();
    assertTenantId(tenant);
    assertWebhookId(id);
    return (this.#tenants.get(tenant)?.get(id)?.failures ?? []).flatMap((j) => { const f = decodeJson<WebhookFailure>(j); return f ? [f] : []; });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#tenants.clear();
  }

  #open(): void {
    if (this.#closed) throw new StoreError('DP_STORE_CLOSED', 'the webhook store is closed');
  }
}
