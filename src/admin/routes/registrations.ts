/**
 * GET /v1/tenants/{tenant}/registrations: the devices registered for the
 * tenant's extensions, read from the location service (RFC 3261 §10.3).
 *
 * AORs are `sip:<user>@<realm>`. Tenants without a `domain` share the
 * default realm, so an AOR there could belong to another tenant's
 * extension with the same user name: such AORs are left out (and counted
 * in `ambiguous`) rather than risk showing another tenant's devices.
 */
import type { FastifyInstance } from 'fastify';
import { aorFor } from '../../sip/registrar/registrar.js';
import type { AdminContext } from '../context.js';
import { realmOf, usernameOf } from '../extensions.js';
import { pageSize, paginate } from '../paging.js';
import { listQuery } from '../schemas.js';
import { paramsSchema } from './collections.js';

export function registerRegistrationRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/v1/tenants/:tenant/registrations', {
    config: { access: 'tenant-read' },
    schema: { tags: ['registrations'], summary: 'Registered devices of the tenant\'s extensions', params: paramsSchema(), querystring: listQuery(['extension']) },
  }, async (req) => {
    const tenant = (req.params as { tenant: string }).tenant;
    const q = req.query as Record<string, string | undefined>;
    const cur = await ctx.readTenant(tenant);
    const realm = realmOf(cur.doc, ctx.deps.defaultRealm);
    // Users of the same realm in other tenants (as this node's cache knows them).
    const foreign = new Set<string>();
    for (const t of ctx.deps.cache.all()) {
      if (t.id === tenant || realmOf(t.doc, ctx.deps.defaultRealm) !== realm) continue;
      for (const e of t.doc.extensions ?? []) foreign.add(usernameOf(e));
    }
    const now = ctx.now();
    const registered = new Set(await ctx.store(() => ctx.deps.location.list(now)));
    let ambiguous = 0;
    const candidates = (cur.doc.extensions ?? []).filter((e) => q.extension === undefined || e.number === q.extension)
      .map((e) => ({ extension: e.number, user: usernameOf(e), aor: aorFor(usernameOf(e), realm) }))
      .filter((c) => registered.has(c.aor))
      .filter((c) => (foreign.has(c.user) ? (ambiguous++, false) : true));
    const page = paginate(candidates, (c) => c.extension, pageSize(q.limit), q.cursor);
    const items = await Promise.all(page.items.map(async (c) => {
      const rec = await ctx.store(() => ctx.deps.location.get(c.aor, now));
      return {
        extension: c.extension, aor: c.aor,
        contacts: rec.bindings.map((b) => ({
          contact: b.contact, expiresAt: new Date(b.expiresAt).toISOString(), q: b.q,
          transport: b.flow.transport, source: `${b.flow.address}:${b.flow.port}`,
          ...(b.userAgent !== undefined ? { userAgent: b.userAgent } : {}),
          ...(b.flow.node !== undefined ? { node: b.flow.node } : {}),
          registeredAt: new Date(b.registeredAt).toISOString(),
        })),
      };
    }));
    return { ...page, items, ...(ambiguous > 0 ? { ambiguous } : {}) };
  });
}
