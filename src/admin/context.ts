/**
 * What every route module shares: the dependencies, reading a tenant, the
 * read-modify-write of a tenant document with compare-and-set and retries,
 * version preconditions (If-Match / If-None-Match), and the mapping of
 * validation issues to API errors.
 */
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import { validateTenant, type TenantDocument, type ValidationIssue } from '../routing/index.js';
import type { LocationService } from '../sip/registrar/location-service.js';
import type { TenantCache } from '../store/tenant-cache.js';
import { TenantStoreConflict, type TenantStore, type Versioned } from '../store/tenant-store.js';
import type { ApiKeyStore } from '../store/api-key-store.js';
import type { CdrStore } from '../store/cdr-store.js';
import type { WebhookStore } from '../store/webhook-store.js';
import type { PromptStore } from '../store/prompt-store.js';
import type { CallRecord, HangUpResult } from '../call/call-tracker.js';
import type { UrlCheck } from '../webhooks/url-guard.js';
import { AdminError, notFound, type AdminIssue } from './errors.js';
import { COLLECTIONS } from './resources.js';
import { promptReferences } from './prompt-references.js';

/** Caller region of a number (the 来电归属地 index of src/call), for simulate. */
export type RegionLookup = (caller: string) => { province?: string; city?: string } | undefined;

export interface AdminDeps {
  store: TenantStore;
  cache: TenantCache;
  keys: ApiKeyStore;
  location: LocationService;
  /** Digest realm of tenants whose document names no `domain` (the SIP profile's realm). */
  defaultRealm: string;
  /** Operator token (DIALPLANE_ADMIN_TOKEN); absent = only tenant API keys work. */
  adminToken?: string;
  /** pino or anything with its interface (Fastify logs requests through it). */
  log: FastifyBaseLogger;
  /** SIP listeners bound (the store is probed separately by /ready). */
  ready: () => boolean;
  region?: RegionLookup;
  /** Requests per credential (or per address without one) per window. Default 600 per minute. */
  rateLimit?: { max: number; timeWindowMs: number };
  /**
   * Counters shared by every node (src/store/redis/admin-rate-limit.ts): an
   * ioredis client, opaque here, and the key prefix. Absent = per process.
   */
  sharedRateLimit?: { readonly redis: unknown; readonly nameSpace: string };
  /** Largest body of ordinary routes, bytes. Default 1 MiB. */
  bodyLimit?: number;
  /** Largest body of an import, bytes. Default 32 MiB. */
  importBodyLimit?: number;
  /** Clock for simulate's default time and registrations' expiry. Default Date.now. */
  now?: () => number;
  /** CDR store: GET …/cdrs, …/cdrs.csv, …/reports/{report} exist only with it. */
  cdrs?: CdrStore;
  /** Webhook configurations: …/webhooks routes exist only with it. */
  webhooks?: WebhookStore;
  /**
   * SSRF check of a webhook URL at registration (the dispatcher's
   * WebhookUrlGuard, with the operator's allow list). Default: the built-in
   * blocked ranges with nothing allowed.
   */
  webhookUrlGuard?: { checkUrl(url: string): UrlCheck };
  /** Told after a webhook change so this node uses it at once. */
  dispatcher?: { invalidate(tenant: string): void };
  /** GET /metrics (operator token) exists only with it. */
  metrics?: { render(): Promise<string>; readonly contentType: string };
  /** Calls in progress on this node (the CallTracker): GET …/calls. */
  calls?: {
    /** This node's calls, or (with Redis) every node's. */
    list(): ReadonlyArray<Readonly<CallRecord>> | Promise<ReadonlyArray<Readonly<CallRecord>>>;
    /** Ends a call of the tenant on this node (DELETE …/calls/{id}); absent: no hang-up. */
    hangUp?(tenant: string, callId: string): Promise<HangUpResult>;
  };
  /** Audio prompts: …/prompts routes exist only with it, and tenant writes check prompt references against it. */
  prompts?: PromptStore;
  /** Largest prompt upload, bytes. Default MAX_PROMPT_BYTES (10 MiB). */
  promptBodyLimit?: number;
}

/**
 * What a tenant write does about prompts it names that have no audio:
 * `refuse` (422) when the write introduces the reference, `warn` (report
 * them with the result, write anyway) for whole-document imports.
 */
export type MissingPrompts = 'refuse' | 'warn';

/** Who is calling, once authenticated. */
export type Principal =
  | { kind: 'operator' }
  | { kind: 'key'; id: string; tenant: string; readOnly: boolean };

/** How many times a write is retried when another writer changed the tenant in between. */
const MAX_WRITE_ATTEMPTS = 6;

export class AdminContext {
  constructor(readonly deps: AdminDeps) {}

  now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** The tenant document, or 404. Store failures become 503. */
  async readTenant(id: string): Promise<Versioned<TenantDocument>> {
    const cur = await this.store(() => this.deps.store.getTenant(id));
    if (!cur) throw notFound(`tenant ${id}`);
    return cur;
  }

  /** Runs a store call; an unreachable store is a 503, not a 500. */
  async store<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof AdminError || err instanceof TenantStoreConflict) throw err;
      this.deps.log.warn({ err }, 'configuration store call failed');
      throw new AdminError('DP_ADMIN_UNAVAILABLE', undefined, { cause: err });
    }
  }

  /**
   * Read-modify-write of a tenant document. `change` gets a private copy of
   * the current document (undefined when the tenant does not exist, which
   * only `create` allows) and returns the document to write plus a result;
   * it runs again on every retry, so preconditions it checks always apply to
   * the state the write replaces. The new document is validated whole
   * (schema and references) before anything is written.
   *
   * `focus`: the pointer of the object the request writes (e.g. `/groups/3`),
   * so issues inside it are reported relative to the request body.
   * `ifTenantVersion`: a precondition on the store version (export/import):
   * a conflict is then a 412, never retried.
   * `missingPrompts`: see MissingPrompts (default refuse); `warnings` lists
   * every reference to a prompt without audio that the write let through.
   */
  async writeTenant<R>(
    id: string,
    change: (doc: TenantDocument | undefined, version: number) => { doc: TenantDocument; result: R; focus?: string },
    opts: { create?: boolean; ifTenantVersion?: number; missingPrompts?: MissingPrompts } = {},
  ): Promise<{ result: R; version: number; doc: TenantDocument; warnings: AdminIssue[] }> {
    for (let attempt = 1; ; attempt++) {
      const cur = await this.store(() => this.deps.store.getTenant(id));
      if (!cur && !opts.create) throw notFound(`tenant ${id}`);
      const version = cur?.version ?? 0;
      if (opts.ifTenantVersion !== undefined && opts.ifTenantVersion !== version) throw stale(version === 0 ? undefined : version);
      const { doc, result, focus } = change(cur ? structuredClone(cur.doc) : undefined, version);
      const checked = validateTenant(doc);
      if (!checked.ok) throw validationError(checked.issues, focus, doc);
      const warnings = await this.checkPrompts(id, doc, cur?.doc, focus, opts.missingPrompts ?? 'refuse');
      try {
        const written = await this.store(() => this.deps.store.putTenant(doc, { ifVersion: version }));
        return { result, version: written, doc, warnings };
      } catch (err) {
        if (!(err instanceof TenantStoreConflict)) throw err;
        if (opts.ifTenantVersion !== undefined) throw stale(err.actual === 0 ? undefined : err.actual);
        if (attempt >= MAX_WRITE_ATTEMPTS) throw new AdminError('DP_ADMIN_CONTENTION');
      }
    }
  }

  /**
   * References of `doc` to prompts the prompt store does not have. Only a
   * reference this write introduces is refused: one to a prompt already
   * missing before (an imported document, audio deleted behind the API's
   * back) must not block unrelated edits of the same tenant. Not atomic
   * with the prompt store (no transaction spans both stores): a prompt
   * deleted at the same moment can still leave a reference behind, which
   * the next write reports.
   */
  private async checkPrompts(tenant: string, doc: TenantDocument, before: TenantDocument | undefined, focus: string | undefined, mode: MissingPrompts): Promise<AdminIssue[]> {
    const prompts = this.deps.prompts;
    const refs = prompts ? promptReferences(doc) : [];
    if (!prompts || refs.length === 0) return [];
    const ids = [...new Set(refs.map((r) => r.prompt))];
    const found = await this.store(() => Promise.all(ids.map(async (p) => ((await prompts.getMeta(tenant, p)) ? undefined : p))));
    const missing = new Set(found.filter((p): p is string => p !== undefined));
    if (missing.size === 0) return [];
    const alreadyMissing = new Set(before ? promptReferences(before).map((r) => r.prompt) : []);
    const issues = refs.filter((r) => missing.has(r.prompt)).map((r) => ({
      prompt: r.prompt,
      issue: toAdminIssue({ code: 'DP_ROUTE_REFERENCE', path: r.path, message: `prompt "${r.prompt}" does not exist (upload it with PUT /v1/tenants/${tenant}/prompts/${r.prompt})` }, focus, doc),
    }));
    const introduced = issues.filter((i) => !alreadyMissing.has(i.prompt)).map((i) => i.issue);
    if (mode === 'refuse' && introduced.length > 0) {
      throw new AdminError('DP_ADMIN_REFERENCE', introduced.length === 1 ? introduced[0]?.message : undefined, { issues: introduced });
    }
    return issues.map((i) => i.issue);
  }
}

function stale(current: string | number | undefined): AdminError {
  return new AdminError('DP_ADMIN_PRECONDITION', current === undefined ? 'the object does not exist' : `current version is ${current}`,
    { extra: current === undefined ? {} : { currentVersion: String(current) } });
}

/**
 * Evaluates If-Match (and a body `version`, its in-body equivalent) and
 * If-None-Match against the current version (undefined = the object does
 * not exist). Strong comparison: a weak tag never matches (RFC 9110 §13.1.1).
 */
export function checkPreconditions(req: FastifyRequest, current: string | undefined, bodyVersion?: unknown): void {
  const ifMatch = header(req, 'if-match');
  if (ifMatch !== undefined) {
    const ok = ifMatch.trim() === '*' ? current !== undefined : current !== undefined && entityTags(ifMatch).includes(current);
    if (!ok) throw stale(current);
  }
  if (typeof bodyVersion === 'string' && bodyVersion !== current) throw stale(current);
  const ifNoneMatch = header(req, 'if-none-match');
  if (ifNoneMatch !== undefined && current !== undefined) {
    if (ifNoneMatch.trim() === '*') throw new AdminError('DP_ADMIN_PRECONDITION', 'the object already exists (If-None-Match: *)', { extra: { currentVersion: current } });
    if (entityTags(ifNoneMatch).includes(current)) throw stale(current);
  }
}

/** The If-Match value as a tenant store version (export/import), or undefined when absent. */
export function tenantVersionPrecondition(req: FastifyRequest): number | undefined {
  const ifMatch = header(req, 'if-match');
  if (ifMatch === undefined) return header(req, 'if-none-match')?.trim() === '*' ? 0 : undefined;
  const tags = entityTags(ifMatch);
  const n = tags.length === 1 && /^[0-9]{1,16}$/.test(tags[0] as string) ? Number(tags[0]) : NaN;
  // An unparseable tag cannot match any version: 412, as for any other mismatch.
  return Number.isSafeInteger(n) ? n : -1;
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** The opaque parts of strong entity tags in a list: `"a", W/"b", "c"` → [a, c]. */
function entityTags(value: string): string[] {
  const out: string[] = [];
  for (const m of value.matchAll(/(W\/)?"([^"]*)"/g)) if (m[1] === undefined) out.push(m[2] as string);
  return out;
}

/** Schema issues → 400, reference issues → 422; each names its field. */
export function validationError(issues: readonly ValidationIssue[], focus?: string, doc?: TenantDocument): AdminError {
  const mapped = issues.map((i) => toAdminIssue(i, focus, doc));
  const schema = issues.some((i) => i.code === 'DP_ROUTE_SCHEMA');
  return schema
    ? new AdminError('DP_ADMIN_VALIDATION', 'the resulting tenant document does not match its schema', { issues: mapped })
    : new AdminError('DP_ADMIN_REFERENCE', issues.length === 1 ? issues[0]?.message : undefined, { issues: mapped });
}

/**
 * A whole-document pointer becomes a body pointer when it falls inside the
 * written object; otherwise it stays a document pointer, with the API path
 * of the object it is in (`routes/hotline`) so the admin can find it.
 */
function toAdminIssue(i: ValidationIssue, focus: string | undefined, doc: TenantDocument | undefined): AdminIssue {
  if (focus !== undefined && (i.path === focus || i.path.startsWith(`${focus}/`))) {
    return { in: 'body', path: i.path.slice(focus.length), message: i.message };
  }
  const object = doc ? objectPathOf(doc, i.path) : undefined;
  return object !== undefined ? { in: 'document', path: i.path, message: i.message, object } : { in: 'document', path: i.path, message: i.message };
}

/** `/groups/3/members/0` → `groups/sales` for a document, to name objects in issues. */
export function objectPathOf(doc: TenantDocument, pointer: string): string | undefined {
  const [, field, index] = pointer.split('/');
  const r = COLLECTIONS.find((c) => c.field === field);
  const item = r && index !== undefined ? (doc[r.field] as unknown as Array<Record<string, unknown>> | undefined)?.[Number(index)] : undefined;
  return r && item ? `${r.path}/${r.keyOf(item)}` : undefined;
}
