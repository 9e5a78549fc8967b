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
import { numberKey, parseNumber, validateGlobal, type GlobalDocument } from '../../routing/index.js';
import { TenantStoreConflict } from '../../store/tenant-store.js';
import { tenantVersionPrecondition, type AdminContext } from '../context.js';
import { AdminError, notFound, type AdminIssue } from '../errors.js';

const ATTEMPTS = 6;

interface PortedEntry { number: string; carrier: string }

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

  app.get('/v1/portability', {
    config: { access: 'operator' },
    schema: { tags, summary: 'The current carrier of a ported number', querystring: { type: 'object', additionalProperties: false, required: ['number'], properties: { number: { type: 'string', minLength: 3, maxLength: 32 } } } },
  }, async (req) => {
    const { number } = req.query as { number: string };
    const key = keyOf(number);
    if (key === undefined) throw new AdminError('DP_ADMIN_VALIDATION', 'number is not a readable phone number', { issues: [{ in: 'query', path: '/number', message: 'not a readable phone number' }] });
    const g = await ctx.store(() => store.getGlobal());
    const hit = (g.doc.carriers?.ported ?? []).find((p) => keyOf(p.number) === key);
    if (!hit) throw notFound(`ported number ${number}`);
    return { number: hit.number, carrier: hit.carrier, version: String(g.version) };
  });

  app.post('/v1/portability', {
    config: { access: 'operator' },
    bodyLimit: ctx.deps.importBodyLimit ?? 32 * 1024 * 1024,
    schema: {
      tags, summary: 'Bulk import of ported numbers (merge or replace the table)',
      body: {
        type: 'object', additionalProperties: false, required: ['entries'],
        properties: { entries: { type: 'array', maxItems: 2_000_000, items: ENTRY_SCHEMA }, mode: { enum: ['merge', 'replace'] } },
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
    const r = await edit(req, (doc) => {
      added = 0;
      updated = 0;
      const table = new Map<string, PortedEntry>();
      if (mode === 'merge') for (const p of doc.carriers?.ported ?? []) table.set(keyOf(p.number) ?? p.number, p);
      for (const [key, e] of incoming) {
        const prev = table.get(key);
        if (!prev) added++;
        else if (prev.carrier !== e.carrier) updated++;
        table.set(key, { number: e.number, carrier: e.carrier });
      }
      return { ...doc, carriers: { ...(doc.carriers ?? {}), ported: [...table.values()] } };
    });
    return { mode, added, updated, total: r.doc.carriers?.ported?.length ?? 0, version: String(r.version) };
  });

  app.delete('/v1/portability/:number', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Remove a number from the ported table', params: { type: 'object', required: ['number'], properties: { number: { type: 'string', minLength: 3, maxLength: 32 } } } },
  }, async (req, reply) => {
    const { number } = req.params as { number: string };
    const key = keyOf(number);
    if (key === undefined) throw notFound(`ported number ${number}`);
    let found = false;
    await edit(req, (doc) => {
      const before = doc.carriers?.ported ?? [];
      const after = before.filter((p) => keyOf(p.number) !== key);
      found = after.length !== before.length;
      return { ...doc, carriers: { ...(doc.carriers ?? {}), ported: after } };
    });
    if (!found) throw notFound(`ported number ${number}`);
    return reply.code(204).send();
  });
}
