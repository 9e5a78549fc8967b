/**
 * Per-tenant webhook configurations, and the last delivery failures of each
 * (so the admin API can show why a tenant's endpoint is not receiving).
 *
 * One JSON Schema (WEBHOOK_CONFIG_SCHEMA) describes a configuration; the
 * admin API validates requests with it and the stores check every `put`
 * with it (DESIGN.md §1 rule 4), so the two cannot drift.
 *
 * Failures are kept only for a webhook that exists: recording one for a
 * webhook deleted meanwhile does nothing, and deleting a webhook deletes
 * its failures, so a re-created id starts clean.
 */
import { Ajv } from 'ajv';
import { StoreError } from './store-error.js';
import { assertTenantId } from './tenant-record.js';

export const WEBHOOK_EVENTS = ['ringing', 'answered', 'ended', 'missed'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export interface WebhookConfig {
  id: string;
  /** http or https. */
  url: string;
  events: WebhookEvent[];
  /** HMAC-SHA256 key of the signature header. */
  secret: string;
  enabled: boolean;
}

export interface WebhookFailure {
  /** Epoch ms of the last attempt. */
  at: number;
  event: WebhookEvent;
  eventId: string;
  callId: string;
  attempts: number;
  /** HTTP status of the last attempt, when there was a response. */
  status?: number;
  error: string;
}

export interface WebhookStore {
  /** Every webhook of a tenant, by id. */
  list(tenant: string): Promise<WebhookConfig[]>;
  get(tenant: string, id: string): Promise<WebhookConfig | undefined>;
  /** Creates or replaces; DP_STORE_BAD_WEBHOOK unless the schema accepts it, or when the tenant has MAX_WEBHOOKS_PER_TENANT others. */
  put(tenant: string, config: WebhookConfig): Promise<void>;
  /** Removes the webhook and its failures; false when there was none. */
  delete(tenant: string, id: string): Promise<boolean>;
  /** Keeps the newest MAX_FAILURES_PER_WEBHOOK; ignored when the webhook does not exist. */
  recordFailure(tenant: string, id: string, failure: WebhookFailure): Promise<void>;
  /** Newest first. */
  failures(tenant: string, id: string): Promise<WebhookFailure[]>;
  close(): Promise<void>;
}

export const MAX_WEBHOOKS_PER_TENANT = 20;
export const MAX_FAILURES_PER_WEBHOOK = 20;

export const WEBHOOK_CONFIG_SCHEMA = {
  $id: 'https://dialplane.dev/schemas/webhook-config.json',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'url', 'events', 'secret', 'enabled'],
  properties: {
    id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
    url: { type: 'string', maxLength: 2048, pattern: '^[Hh][Tt][Tt][Pp][Ss]?://' },
    events: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: [...WEBHOOK_EVENTS] } },
    // At least 16 characters: a short secret makes the signature guessable.
    secret: { type: 'string', minLength: 16, maxLength: 256 },
    enabled: { type: 'boolean' },
  },
} as const;

const validate = new Ajv({ allErrors: true, strict: true }).compile(WEBHOOK_CONFIG_SCHEMA);

export function assertWebhookId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new StoreError('DP_STORE_BAD_WEBHOOK', `not a webhook id: ${JSON.stringify(String(id).slice(0, 80))}`);
}

/** Throws DP_STORE_BAD_WEBHOOK naming every problem. */
export function assertWebhookConfig(config: unknown): asserts config is WebhookConfig {
  if (!validate(config)) {
    const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'invalid'}`);
    throw new StoreError('DP_STORE_BAD_WEBHOOK', `bad webhook configuration: ${problems.join('; ')}`);
  }
  // The pattern only looks at the scheme; the URL must also parse (host present, no spaces).
  let url: URL;
  try {
    url = new URL((config as WebhookConfig).url);
  } catch {
    throw new StoreError('DP_STORE_BAD_WEBHOOK', 'bad webhook configuration: /url is not a URL');
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw new StoreError('DP_STORE_BAD_WEBHOOK', 'bad webhook configuration: /url must be an http or https URL with a host');
  }
}

/** The tenant, id and configuration checked as every store needs them. */
export function checkPut(tenant: string, config: WebhookConfig): string {
  assertTenantId(tenant);
  assertWebhookConfig(config);
  // Only the schema's fields, in a fixed order: the stored text is the same whatever the caller's object was.
  const { id, url, events, secret, enabled } = config;
  return JSON.stringify({ id, url, events, secret, enabled });
}

export function encodeFailure(f: WebhookFailure): string {
  const ok = typeof f === 'object' && f !== null && Number.isFinite(f.at) && (WEBHOOK_EVENTS as readonly unknown[]).includes(f.event)
    && typeof f.eventId === 'string' && typeof f.callId === 'string' && Number.isSafeInteger(f.attempts) && typeof f.error === 'string';
  if (!ok) throw new StoreError('DP_STORE_BAD_WEBHOOK', 'a webhook failure needs at, event, eventId, callId, attempts and error');
  const { at, event, eventId, callId, attempts, status, error } = f;
  return JSON.stringify({ at, event, eventId, callId, attempts, ...(status !== undefined ? { status } : {}), error: error.slice(0, 500) });
}

/** Parses stored JSON; undefined for anything not written by a store. */
export function decodeJson<T>(json: string | null | undefined): T | undefined {
  if (typeof json !== 'string') return undefined;
  try {
    const v: unknown = JSON.parse(json);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as T : undefined;
  } catch {
    return undefined;
  }
}
