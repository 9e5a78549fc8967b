/**
 * The collections of a tenant (numbers, extensions, groups, short-number
 * plans, routes, schedules, trunks, gateways, IVR menus) and the blacklist.
 *
 *   GET    /v1/tenants/{tenant}/{collection}          list (limit, cursor, q, filters)
 *   GET    /v1/tenants/{tenant}/{collection}/{key}    one object, ETag = its version
 *   PUT    /v1/tenants/{tenant}/{collection}/{key}    create (201) or replace (200)
 *   PATCH  /v1/tenants/{tenant}/{collection}/{key}    merge patch (RFC 7396)
 *   DELETE /v1/tenants/{tenant}/{collection}/{key}    204
 *
 * Every write is a read-modify-write of the whole tenant document
 * (AdminContext.writeTenant), so a write of one object never loses a
 * concurrent write of another.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Extension, TenantBlacklist, TenantDocument } from '../../routing/index.js';
import { checkPreconditions, type AdminContext } from '../context.js';
import { AdminError, notFound } from '../errors.js';
import { realmOf, storedExtension } from '../extensions.js';
import { matchesQuery, mergePatch, pageSize, paginate } from '../paging.js';
import {
  COLLECTIONS, collectionOf, contentVersion, etag, objectVersion, showExtension, showObject, type CollectionResource,
} from '../resources.js';
import { listQuery, patchBody, putBody } from '../schemas.js';

type Obj = Record<string, unknown>;
type Params = Record<string, string>;

const TENANT_PARAM = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' };

export function paramsSchema(param?: string): Obj {
  const properties: Obj = { tenant: TENANT_PARAM };
  if (param !== undefined) properties[param] = { type: 'string', minLength: 1, maxLength: 64 };
  return { type: 'object', additionalProperties: false, required: Object.keys(properties), properties };
}

function withVersion(shown: Obj, version: string): Obj {
  return { ...shown, version };
}

/** The body without the API-only fields (`version`, `hasPassword`, `password`). */
function splitBody(body: Obj): { obj: Obj; version: unknown; password: string | undefined } {
  const { version, hasPassword: _ignored, password, ...obj } = body;
  return { obj, version, password: typeof password === 'string' ? password : undefined };
}

export function registerCollectionRoutes(app: FastifyInstance, ctx: AdminContext): void {
  for (const r of COLLECTIONS) registerCollection(app, ctx, r);
  registerBlacklist(app, ctx);
}

function registerCollection(app: FastifyInstance, ctx: AdminContext, r: CollectionResource): void {
  const base = `/v1/tenants/:tenant/${r.path}`;
  const item = `${base}/:${r.param}`;
  const tags = [r.path];
  const inputDef = r.field === 'extensions' ? 'extensionInput' : r.def;
  const keyOfReq = (req: FastifyRequest): string => (req.params as Params)[r.param] as string;

  app.get(base, {
    config: { access: 'tenant-read' },
    schema: { tags, summary: `List ${r.path}`, params: paramsSchema(), querystring: listQuery(r.filters) },
  }, async (req) => {
    const { tenant } = req.params as Params;
    const q = req.query as Record<string, string | undefined>;
    const cur = await ctx.readTenant(tenant as string);
    const all = collectionOf(cur.doc, r).filter((o) => matchesQuery(o, q.q, r.keyOf(o))
      && r.filters.every((f) => q[f] === undefined || String(o[f]) === q[f]));
    const page = paginate(all, r.keyOf, pageSize(q.limit), q.cursor);
    return { ...page, items: page.items.map((o) => withVersion(showObject(r, o), objectVersion(r, o))) };
  });

  app.get(item, {
    config: { access: 'tenant-read' },
    schema: { tags, summary: `Get one of ${r.path}`, params: paramsSchema(r.param) },
  }, async (req, reply) => {
    const { tenant } = req.params as Params;
    const cur = await ctx.readTenant(tenant as string);
    const obj = collectionOf(cur.doc, r).find((o) => r.keyOf(o) === keyOfReq(req));
    if (!obj) throw notFound(`${r.noun} ${keyOfReq(req)}`);
    const version = objectVersion(r, obj);
    return reply.header('etag', etag(version)).send(withVersion(showObject(r, obj), version));
  });

  // The key may be left out of a PUT body (the URL names it): filled in
  // before validation so the body schema can keep the document type's `required`.
  const fillKey = async (req: FastifyRequest): Promise<void> => {
    const body = req.body;
    if (typeof body === 'object' && body !== null && !Array.isArray(body)) req.body = r.fillKey(body as Obj, keyOfReq(req));
  };

  app.put(item, {
    config: { access: 'tenant-write' },
    preValidation: fillKey,
    schema: { tags, summary: `Create or replace one of ${r.path}`, params: paramsSchema(r.param), body: putBody(inputDef) },
  }, async (req, reply) => {
    const key = keyOfReq(req);
    const { obj, version: bodyVersion, password } = splitBody(req.body as Obj);
    if (r.keyOf(obj) !== key) throw keyMismatch(r, key, r.keyOf(obj));
    return write(req, reply, (doc, current) => {
      checkPreconditions(req, current && objectVersion(r, current), bodyVersion);
      const realm = realmOf(doc, ctx.deps.defaultRealm);
      return r.field === 'extensions' ? storedExtension(obj, password, current as Extension | undefined, realm, realm) as unknown as Obj : obj;
    });
  });

  app.patch(item, {
    config: { access: 'tenant-write' },
    schema: { tags, summary: `Edit one of ${r.path} (JSON merge patch)`, params: paramsSchema(r.param), body: patchBody(inputDef) },
  }, async (req, reply) => {
    const key = keyOfReq(req);
    const { obj: patch, version: bodyVersion, password } = splitBody(req.body as Obj);
    return write(req, reply, (doc, current) => {
      if (!current) throw notFound(`${r.noun} ${key}`);
      checkPreconditions(req, objectVersion(r, current), bodyVersion);
      if (r.field !== 'extensions') {
        const merged = mergePatch(current, patch) as Obj;
        if (r.keyOf(merged) !== key) throw keyMismatch(r, key, r.keyOf(merged));
        return merged;
      }
      const { hasPassword: _h, ...shown } = showExtension(current as unknown as Extension);
      const merged = mergePatch(shown, patch) as Obj;
      if (r.keyOf(merged) !== key) throw keyMismatch(r, key, r.keyOf(merged));
      const realm = realmOf(doc, ctx.deps.defaultRealm);
      return storedExtension(merged, password, current as unknown as Extension, realm, realm) as unknown as Obj;
    });
  });

  app.delete(item, {
    config: { access: 'tenant-write' },
    schema: { tags, summary: `Delete one of ${r.path}`, params: paramsSchema(r.param) },
  }, async (req, reply) => {
    const { tenant } = req.params as Params;
    const key = keyOfReq(req);
    await ctx.writeTenant(tenant as string, (doc) => {
      const d = doc as TenantDocument;
      const list = collectionOf(d, r);
      const index = list.findIndex((o) => r.keyOf(o) === key);
      const current = list[index];
      if (!current) throw notFound(`${r.noun} ${key}`);
      checkPreconditions(req, objectVersion(r, current));
      const next = list.filter((_o, i) => i !== index);
      setCollection(d, r, next);
      return { doc: d, result: undefined };
    });
    return reply.code(204).send();
  });

  /**
   * The common part of PUT and PATCH: find the object, let `build` check
   * preconditions and produce the stored form, put it in place, validate
   * and write the tenant.
   */
  async function write(
    req: FastifyRequest, reply: FastifyReply,
    build: (doc: TenantDocument, current: Obj | undefined) => Obj,
  ): Promise<FastifyReply> {
    const { tenant } = req.params as Params;
    const key = keyOfReq(req);
    const { result } = await ctx.writeTenant(tenant as string, (doc) => {
      const d = doc as TenantDocument;
      const list = [...collectionOf(d, r)];
      const index = list.findIndex((o) => r.keyOf(o) === key);
      const stored = build(d, list[index]);
      const at = index >= 0 ? index : list.length;
      list[at] = stored;
      setCollection(d, r, list);
      return { doc: d, result: { stored, created: index < 0 }, focus: `/${r.field}/${at}` };
    });
    const version = objectVersion(r, result.stored);
    return reply.code(result.created ? 201 : 200).header('etag', etag(version)).send(withVersion(showObject(r, result.stored), version));
  }
}

function setCollection(doc: TenantDocument, r: CollectionResource, list: Obj[]): void {
  // An emptied collection is left out rather than kept as []: exports stay minimal and round trips equal.
  if (list.length === 0) delete doc[r.field];
  else (doc as unknown as Obj)[r.field] = list;
}

function keyMismatch(r: CollectionResource, url: string, body: string): AdminError {
  return new AdminError('DP_ADMIN_KEY_MISMATCH', `the URL names ${r.noun} ${url} but the body describes ${body || 'none'}`,
    { issues: [{ in: 'body', path: r.field === 'extensions' ? '/number' : r.field === 'numbers' ? '' : '/id', message: `must be ${url} (the URL's key) or left out` }] });
}

/** The blacklist is one object per tenant: GET, PUT, PATCH, DELETE /v1/tenants/{tenant}/blacklist. */
function registerBlacklist(app: FastifyInstance, ctx: AdminContext): void {
  const url = '/v1/tenants/:tenant/blacklist';
  const tags = ['blacklist'];
  const show = (b: TenantBlacklist | undefined): Obj => withVersion({ ...(b ?? {}) }, contentVersion(b ?? {}));

  app.get(url, { config: { access: 'tenant-read' }, schema: { tags, summary: 'Get the tenant blacklist', params: paramsSchema() } }, async (req, reply) => {
    const cur = await ctx.readTenant((req.params as Params).tenant as string);
    const body = show(cur.doc.blacklist);
    return reply.header('etag', etag(body.version as string)).send(body);
  });

  const replace = (req: FastifyRequest, reply: FastifyReply, next: (current: TenantBlacklist | undefined) => TenantBlacklist | undefined, status: number) =>
    ctx.writeTenant((req.params as Params).tenant as string, (doc) => {
      const d = doc as TenantDocument;
      const b = next(d.blacklist);
      if (b === undefined) delete d.blacklist;
      else d.blacklist = b;
      return { doc: d, result: b, focus: '/blacklist' };
    }).then(({ result }) => {
      if (status === 204) return reply.code(204).send();
      const body = show(result);
      return reply.code(status).header('etag', etag(body.version as string)).send(body);
    });

  const currentVersion = (b: TenantBlacklist | undefined): string | undefined => (b === undefined ? undefined : contentVersion(b));

  app.put(url, {
    config: { access: 'tenant-write' },
    schema: { tags, summary: 'Replace the tenant blacklist', params: paramsSchema(), body: putBody('blacklist') },
  }, async (req, reply) => {
    const { version, ...b } = req.body as Obj;
    return replace(req, reply, (cur) => { checkPreconditions(req, currentVersion(cur), version); return b as TenantBlacklist; }, 200);
  });

  app.patch(url, {
    config: { access: 'tenant-write' },
    schema: { tags, summary: 'Edit the tenant blacklist (JSON merge patch)', params: paramsSchema(), body: patchBody('blacklist') },
  }, async (req, reply) => {
    const { version, ...patch } = req.body as Obj;
    return replace(req, reply, (cur) => {
      checkPreconditions(req, currentVersion(cur), version);
      return mergePatch(cur ?? {}, patch) as TenantBlacklist;
    }, 200);
  });

  app.delete(url, {
    config: { access: 'tenant-write' },
    schema: { tags, summary: 'Remove the tenant blacklist', params: paramsSchema() },
  }, async (req, reply) => replace(req, reply, (cur) => {
    if (cur === undefined) throw notFound('blacklist');
    checkPreconditions(req, currentVersion(cur));
    return undefined;
  }, 204));
}

