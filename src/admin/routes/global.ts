/**
 * Operator-level data shared by every tenant: the global document (global
 * blacklist, mobile segments, ported numbers) and number portability
 * (携号转网) as its own bulk resource, since carriers hand it over as large
 * files of ported numbers.
 *
 *   GET    /v1/global                      the document and its version (ETag "<n>")
 *   PUT    /v1/global                      replace it (If-Match "<n>" honoured)
 *   GET    /v1/portability?number=...      the current carrier of one ported number
 *   POST   /v1/portability                 bulk import {entries:[{number,carrier}], mode:merge|replace}
 *   DELETE /v1/portability/{number}        a number ported back / no longer ported
 *
 * Writes are read-modify-write of the global document with the store's
 * compare-and-set, retried on a lost race, and validated whole
 * (validateGlobal) before anything is written: all or nothing.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { numberKey, parseNumber, validateGlobal, type GlobalDocument, type TenantDocument } from '../../routing/index.js';
import { TenantStoreConflict } from '../../store/tenant-store.js';
import { tenantVersionPrecondition, type AdminContext } from '../context.js';
import { AdminError, notFound, type AdminIssue } from '../errors.js';
import { paramsSchema } from './collections.js';

const ATTEMPTS = 6;

export interface PortedEntry { number: string; carrier: string }

const ENTRY_SCHEMA = {
  type: 'object', additionalProperties: false, required: ['number', 'carrier'],
  properties: { number: { type: 'string', minLength: 3, maxLength: 32 }, carrier: { type: 'string', minLength: 2, maxLength: 32 } },
} as const;

function keyOf(number: string): string | undefined {
  const r = parseNumber(number);
  return r.ok ? numberKey(r.number) : undefined;
}

export function registerGlobalRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const tags = ['global'];
  const store = ctx.deps.store;

  /** Applies `change` to the current global document with CAS retries; validates before writing. */
  async function edit(req: FastifyRequest, change: (doc: GlobalDocument) => GlobalDocument): Promise<{ doc: GlobalDocument; version: number }> {
    const wanted = tenantVersionPrecondition(req);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const cur = await ctx.store(() => store.getGlobal());
      if (wanted !== undefined && wanted !== cur.version) {
        throw new AdminError('DP_ADMIN_PRECONDITION', `the global document is at version ${cur.version}`, { extra: { version: String(cur.version) } });
      }
      const next = change(structuredClone(cur.doc));
      const v = validateGlobal(next);
      if (!v.ok) {
        throw new AdminError('DP_ADMIN_VALIDATION', 'the resulting global document does not match its schema', {
          issues: v.issues.map((i) => ({ in: 'document', path: i.path, message: i.message })),
        });
      }
      try {
        const version = await ctx.store(() => store.putGlobal(next, { ifVersion: cur.version }));
        return { doc: next, version };
      } catch (err) {
        if (err instanceof TenantStoreConflict && wanted === undefined) continue;
        if (err instanceof TenantStoreConflict) throw new AdminError('DP_ADMIN_PRECONDITION', 'the global document changed meanwhile');
        throw err;
      }
    }
    throw new AdminError('DP_ADMIN_CONTENTION');
  }

  app.get('/v1/global', { config: { access: 'operator' }, schema: { tags, summary: 'The global document (blacklist, carrier segments, ported numbers)' } }, async (_req, reply) => {
    const g = await ctx.store(() => store.getGlobal());
    reply.header('etag', `"${g.version}"`);
    return { ...g.doc, version: String(g.version) };
  });

  app.put('/v1/global', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Replace the global document', body: { type: 'object' } },
  }, async (req, reply) => {
    const body = { ...(req.body as Record<string, unknown>) };
    delete body.version;
    const r = await edit(req, () => body as GlobalDocument);
    reply.header('etag', `"${r.version}"`);
    return { ...r.doc, version: String(r.version) };
  });

  // A tenant's own table (TenantDocument.ported), consulted before the operator's.
  registerPortabilityRoutes(app, {
    url: '/v1/tenants/:tenant/portability', tags: ['portability'], readAccess: 'tenant-read', writeAccess: 'tenant-write',
    params: (paramsSchema() as { properties: Record<string, unknown> }).properties,
    bodyLimit: ctx.deps.importBodyLimit ?? 32 * 1024 * 1024, maxEntries: 100_000,
    read: async (req) => {
      const cur = await ctx.readTenant((req.params as { tenant: string }).tenant);
      return { table: cur.doc.ported ?? [], version: String(cur.version) };
    },
    edit: async (req, change) => {
      const tenant = (req.params as { tenant: string }).tenant;
      const r = await ctx.writeTenant(tenant, (doc) => {
        if (!doc) throw notFound(`tenant ${tenant}`);
        const ported = change(doc.ported ?? []);
        const next: TenantDocument = { ...doc, ported };
        if (ported.length === 0) delete next.ported;
        return { doc: next, result: undefined };
      }, tenantVersionPrecondition(req) !== undefined ? { ifTenantVersion: tenantVersionPrecondition(req) as number } : {});
      return { total: r.doc.ported?.length ?? 0, version: String(r.version) };
    },
  });

  registerPortabilityRoutes(app, {
    url: '/v1/portability', tags, readAccess: 'operator', writeAccess: 'operator', params: undefined,
    bodyLimit: ctx.deps.importBodyLimit ?? 32 * 1024 * 1024, maxEntries: 2_000_000,
    read: async () => {
      const g = await ctx.store(() => store.getGlobal());
      return { table: g.doc.carriers?.ported ?? [], version: String(g.version) };
    },
    edit: async (req, change) => {
      const r = await edit(req, (doc) => ({ ...doc, carriers: { ...(doc.carriers ?? {}), ported: change(doc.carriers?.ported ?? []) } }));
      return { total: r.doc.carriers?.ported?.length ?? 0, version: String(r.version) };
    },
  });
}

/**
 * One ported-number table behind the API: where it lives (the global
 * document, or one tenant's), who may read and write it.
 */
export interface PortabilityTable {
  url: string;
  tags: string[];
  readAccess: 'operator' | 'tenant-read';
  writeAccess: 'operator' | 'tenant-write';
  /** Path parameters besides `number` (the tenant's). */
  params: Record<string, unknown> | undefined;
  bodyLimit: number;
  maxEntries: number;
  read(req: FastifyRequest): Promise<{ table: readonly PortedEntry[]; version: string }>;
  /** Applies `change` to the table in a compare-and-set write; `change` may run more than once. */
  edit(req: FastifyRequest, change: (table: readonly PortedEntry[]) => PortedEntry[]): Promise<{ total: number; version: string }>;
}

/**
 *   GET    {url}?number=...      the current carrier of one ported number
 *   POST   {url}                 bulk import {entries:[{number,carrier}], mode:merge|replace}
 *   DELETE {url}/{number}        a number ported back / no longer ported
 */
export function registerPortabilityRoutes(app: FastifyInstance, t: PortabilityTable): void {
  const { tags } = t;
  const extra = (t.params ?? {}) as Record<string, unknown>;
  const params = (more: Record<string, unknown>): Record<string, unknown> | undefined => {
    const properties = { ...extra, ...more };
    return Object.keys(properties).length === 0 ? undefined : { type: 'object', additionalProperties: false, required: Object.keys(properties), properties };
  };
  const listParams = params({});
  const numberParams = params({ number: { type: 'string', minLength: 3, maxLength: 32 } });

  app.get(t.url, {
    config: { access: t.readAccess },
    schema: {
      tags, summary: 'The current carrier of a ported number',
      ...(listParams ? { params: listParams } : {}),
      querystring: { type: 'object', additionalProperties: false, required: ['number'], properties: { number: { type: 'string', minLength: 3, maxLength: 32 } } },
    },
  }, async (req) => {
    const { number } = req.query as { number: string };
    const key = keyOf(number);
    if (key === undefined) throw new AdminError('DP_ADMIN_VALIDATION', 'number is not a readable phone number', { issues: [{ in: 'query', path: '/number', message: 'not a readable phone number' }] });
    const { table, version } = await t.read(req);
    const hit = table.find((p) => keyOf(p.number) === key);
    if (!hit) throw notFound(`ported number ${number}`);
    return { number: hit.number, carrier: hit.carrier, version };
  });

  app.post(t.url, {
    config: { access: t.writeAccess },
    bodyLimit: t.bodyLimit,
    schema: {
      tags, summary: 'Bulk import of ported numbers (merge or replace the table)',
      ...(listParams ? { params: listParams } : {}),
      body: {
        type: 'object', additionalProperties: false, required: ['entries'],
        properties: { entries: { type: 'array', maxItems: t.maxEntries, items: ENTRY_SCHEMA }, mode: { enum: ['merge', 'replace'] } },
      },
    },
  }, async (req) => {
    const { entries, mode = 'merge' } = req.body as { entries: PortedEntry[]; mode?: 'merge' | 'replace' };
    // Every number must be readable: one bad row refuses the whole file, naming the row.
    const incoming = new Map<string, PortedEntry>();
    const issues: AdminIssue[] = [];
    for (const [i, e] of entries.entries()) {
      const key = keyOf(e.number);
      if (key === undefined) issues.push({ in: 'body', path: `/entries/${i}/number`, message: `"${e.number}" is not a readable phone number` });
      else incoming.set(key, e); // a later row for the same number wins, as in the carrier's file order
    }
    if (issues.length > 0) throw new AdminError('DP_ADMIN_VALIDATION', `${issues.length} unreadable number(s)`, { issues: issues.slice(0, 100) });
    let added = 0;
    let updated = 0;
    const r = await t.edit(req, (current) => {
      added = 0;
      updated = 0;
      const table = new Map<string, PortedEntry>();
      if (mode === 'merge') for (const p of current) table.set(keyOf(p.number) ?? p.number, p);
      for (const [key, e] of incoming) {
        const prev = table.get(key);
        if (!prev) added++;
        else if (prev.carrier !== e.carrier) updated++;
        table.set(key, { number: e.number, carrier: e.carrier });
      }
      return [...table.values()];
    });
    return { mode, added, updated, total: r.total, version: r.version };
  });

  app.delete(`${t.url}/:number`, {
    config: { access: t.writeAccess },
    schema: { tags, summary: 'Remove a number from the ported table', params: numberParams },
  }, async (req, reply) => {
    const { number } = req.params as { number: string };
    const key = keyOf(number);
    if (key === undefined) throw notFound(`ported number ${number}`);
    let found = false;
    await t.edit(req, (current) => {
      const after = current.filter((p) => keyOf(p.number) !== key);
      found = after.length !== current.length;
      return after;
    });
    if (!found) throw notFound(`ported number ${number}`);
    return reply.code(204).send();
  });
}
