/**
 * Webhooks of a tenant (call events posted to the tenant's endpoint).
 *
 *   GET    /v1/tenants/{tenant}/webhooks                 list
 *   GET    /v1/tenants/{tenant}/webhooks/{id}            one
 *   PUT    /v1/tenants/{tenant}/webhooks/{id}            create (201) or replace (200)
 *   DELETE /v1/tenants/{tenant}/webhooks/{id}            remove, with its failures
 *   GET    /v1/tenants/{tenant}/webhooks/{id}/failures   last delivery failures, newest first
 *
 * The body is WEBHOOK_CONFIG_SCHEMA (the store's own schema) with `id`
 * optional (the URL names it). The signing `secret` is write-only: no
 * answer ever contains it (GET shows `hasSecret`), and a PUT replacing an
 * existing webhook may leave it out to keep the stored one. After a change
 * the node's dispatcher forgets the tenant's cached configurations, so the
 * next call event uses the new one (other nodes refresh on their own TTL).
 *
 * A URL the SSRF guard refuses on its face (not http/https, user:password@,
 * a literal loopback/private/link-local/... address, `localhost`) is a 400
 * naming `/url` and the reason. Names are resolved and checked again at
 * every delivery (webhook-dispatcher.ts), where a refusal shows up in the
 * failure list.
 */
import type { FastifyInstance } from 'fastify';
import { StoreError } from '../../store/store-error.js';
import { MAX_WEBHOOKS_PER_TENANT, WEBHOOK_CONFIG_SCHEMA, type WebhookConfig, type WebhookStore } from '../../store/webhook-store.js';
import type { AdminContext } from '../context.js';
import { AdminError, notFound } from '../errors.js';
import { paramsSchema } from './collections.js';
import { WebhookUrlGuard } from '../../webhooks/url-guard.js';

type Obj = Record<string, unknown>;

/** The store's schema as a PUT body: no $id, `id` and `secret` optional. */
export function webhookBodySchema(): Obj {
  const { $id: _id, required, properties, ...rest } = structuredClone(WEBHOOK_CONFIG_SCHEMA) as unknown as Obj & { $id: string; required: string[]; properties: Obj };
  return { ...rest, properties, required: required.filter((f) => f !== 'id' && f !== 'secret') };
}

function show(c: WebhookConfig): Obj {
  return { id: c.id, url: c.url, events: c.events, enabled: c.enabled, hasSecret: typeof c.secret === 'string' && c.secret.length > 0 };
}

export function registerWebhookRoutes(app: FastifyInstance, ctx: AdminContext, webhooks: WebhookStore): void {
  const tags = ['webhooks'];
  const idParams = {
    type: 'object', additionalProperties: false, required: ['tenant', 'id'],
    properties: { ...(paramsSchema() as { properties: Obj }).properties, id: WEBHOOK_CONFIG_SCHEMA.properties.id },
  };
  const changed = (tenant: string): void => ctx.deps.dispatcher?.invalidate(tenant);
  const guard = ctx.deps.webhookUrlGuard ?? new WebhookUrlGuard();

  app.get('/v1/tenants/:tenant/webhooks', {
    config: { access: 'tenant-read' },
    schema: { tags, summary: 'The tenant\'s webhooks (secrets never shown)', params: paramsSchema() },
  }, async (req) => {
    const tenant = (req.params as { tenant: string }).tenant;
    await ctx.readTenant(tenant);
    const all = await ctx.store(() => webhooks.list(tenant));
    return { items: [...all].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(show) };
  });

  app.get('/v1/tenants/:tenant/webhooks/:id', {
    config: { access: 'tenant-read' },
    schema: { tags, summary: 'One webhook (secret never shown)', params: idParams },
  }, async (req) => {
    const { tenant, id } = req.params as { tenant: string; id: string };
    await ctx.readTenant(tenant);
    const c = await ctx.store(() => webhooks.get(tenant, id));
    if (!c) throw notFound(`webhook ${id}`);
    return show(c);
  });

  app.put('/v1/tenants/:tenant/webhooks/:id', {
    config: { access: 'tenant-write' },
    schema: { tags, summary: 'Create or replace a webhook; `secret` is required on creation, kept when left out of a replacement', params: idParams, body: webhookBodySchema() },
  }, async (req, reply) => {
    const { tenant, id } = req.params as { tenant: string; id: string };
    const body = req.body as Omit<WebhookConfig, 'id' | 'secret'> & { id?: string; secret?: string };
    if (body.id !== undefined && body.id !== id) {
      throw new AdminError('DP_ADMIN_KEY_MISMATCH', `the body names webhook "${body.id}", the URL "${id}"`, { issues: [{ in: 'body', path: '/id', message: 'differs from the id in the URL' }] });
    }
    const verdict = guard.checkUrl(body.url);
    if (!verdict.ok) {
      throw new AdminError('DP_ADMIN_VALIDATION', `url ${verdict.reason}`, { issues: [{ in: 'body', path: '/url', message: verdict.reason }] });
    }
    await ctx.readTenant(tenant);
    const existing = await ctx.store(() => webhooks.get(tenant, id));
    const secret = body.secret ?? existing?.secret;
    if (secret === undefined) {
      throw new AdminError('DP_ADMIN_VALIDATION', 'a new webhook needs a secret', { issues: [{ in: 'body', path: '/secret', message: 'is required when creating a webhook' }] });
    }
    if (!existing && (await ctx.store(() => webhooks.list(tenant))).length >= MAX_WEBHOOKS_PER_TENANT) {
      throw new AdminError('DP_ADMIN_CONFLICT', `a tenant has at most ${MAX_WEBHOOKS_PER_TENANT} webhooks; delete one first`);
    }
    const config: WebhookConfig = { id, url: body.url, events: body.events, secret, enabled: body.enabled };
    try {
      await webhooks.put(tenant, config);
    } catch (err) {
      // The schema passed already; what the store still refuses is a URL that does not parse.
      if (err instanceof StoreError && err.code === 'DP_STORE_BAD_WEBHOOK') {
        const path = /(\/[a-z]+)/.exec(err.message.replace(/^bad webhook configuration: /, ''))?.[1] ?? '';
        throw new AdminError('DP_ADMIN_VALIDATION', err.message, { issues: [{ in: 'body', path, message: err.message.replace(/^bad webhook configuration: \/?[a-z]* ?/, '') }] });
      }
      await ctx.store(() => Promise.reject(err));
    }
    changed(tenant);
    return reply.code(existing ? 200 : 201).send(show(config));
  });

  app.delete('/v1/tenants/:tenant/webhooks/:id', {
    config: { access: 'tenant-write' },
    schema: { tags, summary: 'Remove a webhook and its failures', params: idParams },
  }, async (req, reply) => {
    const { tenant, id } = req.params as { tenant: string; id: string };
    await ctx.readTenant(tenant);
    if (!(await ctx.store(() => webhooks.delete(tenant, id)))) throw notFound(`webhook ${id}`);
    changed(tenant);
    return reply.code(204).send();
  });

  app.get('/v1/tenants/:tenant/webhooks/:id/failures', {
    config: { access: 'tenant-read' },
    schema: { tags, summary: 'Last delivery failures of a webhook, newest first (times in epoch ms)', params: idParams },
  }, async (req) => {
    const { tenant, id } = req.params as { tenant: string; id: string };
    await ctx.readTenant(tenant);
    if (!(await ctx.store(() => webhooks.get(tenant, id)))) throw notFound(`webhook ${id}`);
    return { items: await ctx.store(() => webhooks.failures(tenant, id)) };
  });
}
