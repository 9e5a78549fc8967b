/**
 * Tenant API keys.
 *
 *   POST   /v1/tenants/{tenant}/api-keys        create; the key is in this answer only
 *   GET    /v1/tenants/{tenant}/api-keys        list (ids, names, scopes; never secrets)
 *   DELETE /v1/tenants/{tenant}/api-keys/{id}   revoke, effective on the next request on every node
 *
 * The operator or a non-read-only key of the tenant may create and revoke:
 * a key can mint keys with at most its own rights, which tenant-write
 * already is.
 */
import type { FastifyInstance } from 'fastify';
import { generateApiKey, type ApiKeyRecord } from '../../store/api-key-store.js';
import type { AdminContext } from '../context.js';
import { AdminError, notFound } from '../errors.js';
import { API_KEY_BODY } from '../schemas.js';
import { paramsSchema } from './collections.js';

const MAX_KEYS_PER_TENANT = 100;

function show(r: ApiKeyRecord): Record<string, unknown> {
  return { id: r.id, tenant: r.tenant, readOnly: r.readOnly, ...(r.name !== undefined ? { name: r.name } : {}), createdAt: new Date(r.createdAt).toISOString() };
}

export function registerApiKeyRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const tags = ['api-keys'];
  const idParams = { type: 'object', additionalProperties: false, required: ['tenant', 'id'], properties: { ...(paramsSchema() as { properties: object }).properties, id: { type: 'string', pattern: '^[0-9a-f]{16}$' } } };

  app.post('/v1/tenants/:tenant/api-keys', {
    config: { access: 'tenant-write' },
    schema: { tags, summary: 'Create an API key for the tenant (shown once)', params: paramsSchema(), body: API_KEY_BODY },
  }, async (req, reply) => {
    const tenant = (req.params as { tenant: string }).tenant;
    const body = (req.body ?? {}) as { name?: string; readOnly?: boolean };
    await ctx.readTenant(tenant);
    const existing = await ctx.store(() => ctx.deps.keys.list(tenant));
    if (existing.length >= MAX_KEYS_PER_TENANT) throw new AdminError('DP_ADMIN_CONFLICT', `a tenant has at most ${MAX_KEYS_PER_TENANT} API keys; revoke one first`);
    for (;;) {
      const k = generateApiKey();
      const rec: ApiKeyRecord = { id: k.id, tenant, readOnly: body.readOnly ?? false, secretHash: k.secretHash, createdAt: ctx.now(), ...(body.name !== undefined ? { name: body.name } : {}) };
      // 64-bit random ids practically never collide; if one does, draw again.
      if (await ctx.store(() => ctx.deps.keys.create(rec))) {
        return reply.code(201).header('cache-control', 'no-store').send({ ...show(rec), key: k.key });
      }
    }
  });

  app.get('/v1/tenants/:tenant/api-keys', {
    config: { access: 'tenant-read' },
    schema: { tags, summary: 'List the tenant\'s API keys (no secrets)', params: paramsSchema() },
  }, async (req) => {
    const tenant = (req.params as { tenant: string }).tenant;
    await ctx.readTenant(tenant);
    return { items: (await ctx.store(() => ctx.deps.keys.list(tenant))).map(show) };
  });

  app.delete('/v1/tenants/:tenant/api-keys/:id', {
    config: { access: 'tenant-write' },
    schema: { tags, summary: 'Revoke an API key', params: idParams },
  }, async (req, reply) => {
    const { tenant, id } = req.params as { tenant: string; id: string };
    const rec = await ctx.store(() => ctx.deps.keys.get(id));
    if (rec?.tenant !== tenant) throw notFound(`API key ${id}`);
    await ctx.store(() => ctx.deps.keys.delete(id));
    return reply.code(204).send();
  });
}
