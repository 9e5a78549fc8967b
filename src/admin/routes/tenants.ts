/**
 * Tenants as a whole.
 *
 *   GET    /v1/tenants                    operator: ids and versions (paginated)
 *   GET    /v1/tenants/{tenant}           settings (id, name, domain, time zone...) and object counts
 *   PUT    /v1/tenants/{tenant}           create (operator) or replace the settings; collections are kept
 *   PATCH  /v1/tenants/{tenant}           merge patch of the settings
 *   DELETE /v1/tenants/{tenant}           operator: the tenant, its API keys and its prompts
 *   GET    /v1/tenants/{tenant}/export    the whole document (HA1s only with ?secrets=true and write rights)
 *   POST   /v1/tenants/{tenant}/import    replace the whole document, all or nothing (`warnings`: prompts without audio)
 *
 * Versions here are the store's tenant version (a number, ETag `"<n>"`).
 *
 * The domain is the digest realm, and HA1s are hashes over the realm: a
 * settings change of the domain is refused (409) while the tenant has
 * extensions. To move a tenant to another domain, import the document with
 * a `password` for every extension (or remove the extensions first).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Extension, TenantDocument } from '../../routing/index.js';
import { TenantStoreConflict } from '../../store/tenant-store.js';
import { tenantVersionPrecondition, type AdminContext } from '../context.js';
import { AdminError, notFound, type AdminIssue } from '../errors.js';
import { credentialsFor, realmOf, storedExtension, usernameOf } from '../extensions.js';
import { matchesQuery, mergePatch, pageSize, paginate } from '../paging.js';
import { COLLECTIONS, etag, showExtension } from '../resources.js';
import { TENANT_SETTINGS_FIELDS, importBody, listQuery, patchBody, putBody } from '../schemas.js';
import { paramsSchema } from './collections.js';

type Obj = Record<string, unknown>;

function settingsOf(doc: TenantDocument): Obj {
  const out: Obj = {};
  for (const f of TENANT_SETTINGS_FIELDS) if (doc[f] !== undefined) out[f] = doc[f];
  return out;
}

function countsOf(doc: TenantDocument): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of COLLECTIONS) out[r.path] = (doc[r.field] ?? []).length;
  return out;
}

function settingsBody(doc: TenantDocument, version: number): Obj {
  return { ...settingsOf(doc), version: String(version), counts: countsOf(doc) };
}

/** Body `version` of the settings, compared like If-Match. */
function bodyVersionPrecondition(req: FastifyRequest, body: Obj): number | undefined {
  const header = tenantVersionPrecondition(req);
  if (typeof body.version !== 'string') return header;
  const v = /^[0-9]{1,16}$/.test(body.version) ? Number(body.version) : -1;
  if (header !== undefined && header !== v) return -1;
  return v;
}

function realmChangeRefused(doc: TenantDocument, from: string, to: string): AdminError {
  const numbers = (doc.extensions ?? []).map((e) => e.number);
  return new AdminError('DP_ADMIN_CONFLICT',
    `changing the SIP domain from "${from}" to "${to}" invalidates the digest hashes of ${numbers.length} extension(s); import the tenant with a password for each extension, or remove the extensions first`,
    { issues: [{ in: 'body', path: '/domain', message: 'cannot change while the tenant has extensions' }], extra: { extensions: numbers } });
}

export function registerTenantRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const tags = ['tenants'];

  app.get('/v1/tenants', {
    config: { access: 'operator' },
    schema: { tags, summary: 'List tenants (operator)', querystring: listQuery([]) },
  }, async (req) => {
    const q = req.query as Record<string, string | undefined>;
    const versions = await ctx.store(() => ctx.deps.store.tenantVersions());
    const all = [...versions].map(([id, v]) => ({ id, version: String(v) })).filter((t) => matchesQuery({}, q.q, t.id));
    return paginate(all, (t) => t.id, pageSize(q.limit), q.cursor);
  });

  app.get('/v1/tenants/:tenant', {
    config: { access: 'tenant-read' },
    schema: { tags, summary: 'Tenant settings and object counts', params: paramsSchema() },
  }, async (req, reply) => {
    const cur = await ctx.readTenant((req.params as { tenant: string }).tenant);
    return reply.header('etag', etag(cur.version)).send(settingsBody(cur.doc, cur.version));
  });

  const writeSettings = async (req: FastifyRequest, reply: FastifyReply, next: (current: Obj) => Obj, mayCreate: boolean): Promise<FastifyReply> => {
    const tenant = (req.params as { tenant: string }).tenant;
    const body = req.body as Obj;
    const precondition = bodyVersionPrecondition(req, body);
    if (body.id !== undefined && body.id !== tenant) {
      throw new AdminError('DP_ADMIN_KEY_MISMATCH', `the URL names tenant ${tenant} but the body says ${String(body.id)}`, { issues: [{ in: 'body', path: '/id', message: `must be ${tenant} or left out` }] });
    }
    // Creating a tenant is the operator's; a key's own tenant always exists (else 404).
    const create = mayCreate && req.principal?.kind === 'operator';
    const { doc, version, result: created } = await ctx.writeTenant(tenant, (current) => {
      const settings = next(current ? settingsOf(current) : {});
      const doc: TenantDocument = { ...(current ?? { id: tenant }) };
      for (const f of TENANT_SETTINGS_FIELDS) delete doc[f];
      Object.assign(doc, settings, { id: tenant });
      if (current && (current.extensions ?? []).length > 0) {
        const from = realmOf(current, ctx.deps.defaultRealm);
        const to = realmOf(doc, ctx.deps.defaultRealm);
        if (from !== to) throw realmChangeRefused(current, from, to);
      }
      return { doc: reorder(doc), result: current === undefined };
    }, { create, ...(precondition !== undefined ? { ifTenantVersion: precondition } : {}) });
    return reply.code(created ? 201 : 200).header('etag', etag(version)).send(settingsBody(doc, version));
  };

  app.put('/v1/tenants/:tenant', {
    config: { access: 'tenant-write' },
    schema: { tags, summary: 'Create (operator) or replace the tenant settings; objects are kept', params: paramsSchema(), body: putBody('tenantSettings') },
  }, async (req, reply) => {
    const { version: _v, ...settings } = req.body as Obj;
    return writeSettings(req, reply, () => settings, true);
  });

  app.patch('/v1/tenants/:tenant', {
    config: { access: 'tenant-write' },
    schema: { tags, summary: 'Edit the tenant settings (JSON merge patch)', params: paramsSchema(), body: patchBody('tenantSettings') },
  }, async (req, reply) => {
    const { version: _v, ...patch } = req.body as Obj;
    return writeSettings(req, reply, (current) => mergePatch(current, patch) as Obj, false);
  });

  app.delete('/v1/tenants/:tenant', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Delete a tenant and revoke its API keys (operator)', params: paramsSchema() },
  }, async (req, reply) => {
    const tenant = (req.params as { tenant: string }).tenant;
    const precondition = tenantVersionPrecondition(req);
    let deleted: boolean;
    try {
      deleted = await ctx.store(() => ctx.deps.store.deleteTenant(tenant, precondition !== undefined ? { ifVersion: precondition } : {}));
    } catch (err) {
      if (err instanceof TenantStoreConflict) {
        if (err.actual === 0) throw notFound(`tenant ${tenant}`);
        throw new AdminError('DP_ADMIN_PRECONDITION', `current version is ${err.actual}`, { extra: { currentVersion: String(err.actual) } });
      }
      throw err;
    }
    if (!deleted) throw notFound(`tenant ${tenant}`);
    await ctx.store(() => ctx.deps.keys.deleteTenant(tenant));
    // Its prompts too: a tenant created later under the same id must not find them.
    const prompts = ctx.deps.prompts;
    if (prompts) await ctx.store(() => prompts.deleteTenant(tenant));
    return reply.code(204).send();
  });

  app.get('/v1/tenants/:tenant/export', {
    config: { access: 'tenant-read' },
    schema: {
      tags, summary: 'The whole tenant document', params: paramsSchema(),
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { secrets: { enum: ['true', 'false'], description: 'Include the extensions\' digest HA1s (needs write rights), so the export can be imported into an empty tenant' } },
      },
    },
  }, async (req, reply) => {
    const tenant = (req.params as { tenant: string }).tenant;
    const secrets = (req.query as { secrets?: string }).secrets === 'true';
    if (secrets && req.principal?.kind === 'key' && req.principal.readOnly) {
      throw new AdminError('DP_ADMIN_FORBIDDEN', 'a read-only key cannot export digest hashes');
    }
    const cur = await ctx.readTenant(tenant);
    const doc: Obj = secrets ? { ...cur.doc } : { ...cur.doc, ...(cur.doc.extensions ? { extensions: cur.doc.extensions.map(showExtension) } : {}) };
    // Secrets must not linger in caches or proxies.
    if (secrets) reply.header('cache-control', 'no-store');
    return reply.header('etag', etag(cur.version)).send(doc);
  });

  app.post('/v1/tenants/:tenant/import', {
    config: { access: 'tenant-write' },
    bodyLimit: ctx.deps.importBodyLimit ?? 32 * 1024 * 1024,
    schema: { tags, summary: 'Replace the whole tenant document, all or nothing', params: paramsSchema(), body: importBody() },
  }, async (req, reply) => {
    const tenant = (req.params as { tenant: string }).tenant;
    const body = req.body as Obj;
    if (body.id !== undefined && body.id !== tenant) {
      throw new AdminError('DP_ADMIN_KEY_MISMATCH', `the URL names tenant ${tenant} but the document is ${String(body.id)}`, { issues: [{ in: 'body', path: '/id', message: `must be ${tenant} or left out` }] });
    }
    const precondition = tenantVersionPrecondition(req);
    // Prompts the document names but nobody uploaded are reported, not refused: an
    // import creates or restores a tenant whose audio cannot exist before it does
    // (routing-rules/examples name prompts too), so they can only be uploaded after.
    const { version, result: created, warnings } = await ctx.writeTenant(tenant, (current) => {
      const doc = importedDocument(body, tenant, current, ctx.deps.defaultRealm);
      return { doc, result: current === undefined };
    }, { create: req.principal?.kind === 'operator', missingPrompts: 'warn', ...(precondition !== undefined ? { ifTenantVersion: precondition } : {}) });
    return reply.code(created ? 201 : 200).header('etag', etag(version))
      .send({ id: tenant, version: String(version), created, ...(warnings.length > 0 ? { warnings } : {}) });
  });
}

/**
 * The stored document for an imported one: extensions with HA1s keep them
 * (an export with secrets, a routing-rules file), extensions with a
 * password get HA1s for the document's realm, and extensions with neither
 * keep the current ones when user name and realm are unchanged. All
 * problems are reported at once.
 */
function importedDocument(body: Obj, tenant: string, current: TenantDocument | undefined, defaultRealm: string): TenantDocument {
  const doc = { ...body, id: tenant } as unknown as TenantDocument;
  const realm = realmOf(doc, defaultRealm);
  const currentRealm = current ? realmOf(current, defaultRealm) : undefined;
  const currentByNumber = new Map((current?.extensions ?? []).map((e) => [e.number, e]));
  const issues: AdminIssue[] = [];
  const extensions = ((body.extensions ?? []) as Obj[]).map((input, i) => {
    const { password, hasPassword: _h, ...rest } = input as Obj & { password?: string };
    const sip = rest.sip as { username?: string; ha1Md5?: string; ha1Sha256?: string } | undefined;
    const path = `/extensions/${i}`;
    if (sip?.ha1Md5 !== undefined || sip?.ha1Sha256 !== undefined) {
      if (sip.ha1Md5 === undefined || sip.ha1Sha256 === undefined) {
        issues.push({ in: 'body', path: `${path}/sip`, message: 'needs both ha1Md5 and ha1Sha256, or neither' });
        return rest as unknown as Extension;
      }
      if (password !== undefined) issues.push({ in: 'body', path: `${path}/password`, message: 'give either a password or the digest hashes, not both' });
      return rest as unknown as Extension;
    }
    if (password !== undefined && typeof rest.number === 'string') {
      return { ...rest, sip: credentialsFor(sip?.username, usernameOf({ number: rest.number, ...(sip ? { sip } : {}) }), realm, password) } as unknown as Extension;
    }
    try {
      return storedExtension(rest, undefined, currentByNumber.get(String(rest.number)), currentRealm, realm, `${path}/password`);
    } catch (err) {
      if (err instanceof AdminError) issues.push(...err.issues);
      return rest as unknown as Extension;
    }
  });
  if (issues.length > 0) throw new AdminError('DP_ADMIN_VALIDATION', 'extensions without usable credentials', { issues });
  if (body.extensions !== undefined) doc.extensions = extensions;
  return doc;
}

/** Settings first, then the collections, as the schema lists them (exports read naturally). */
function reorder(doc: TenantDocument): TenantDocument {
  const out: Obj = {};
  const order = ['$schema', ...TENANT_SETTINGS_FIELDS, 'numbers', 'extensions', 'groups', 'shortNumberPlans', 'schedules', 'blacklist', 'inboundTrunks', 'outboundGateways', 'ivrMenus', 'routes'];
  for (const k of order) if ((doc as unknown as Obj)[k] !== undefined) out[k] = (doc as unknown as Obj)[k];
  for (const [k, v] of Object.entries(doc)) if (!(k in out)) out[k] = v;
  return out as unknown as TenantDocument;
}

