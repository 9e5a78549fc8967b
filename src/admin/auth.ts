/**
 * Authentication and access rules.
 *
 * Credentials: `Authorization: Bearer <token>` or `X-API-Key: <token>`,
 * where the token is the operator token (DIALPLANE_ADMIN_TOKEN) or a
 * tenant API key `dpk_<id>_<secret>`.
 *
 * Access of a route (its `config.access`):
 *   public        no credentials (health, docs);
 *   operator      the operator token only (listing, creating, deleting tenants);
 *   tenant-read   the operator, or any key of the tenant in the URL;
 *   tenant-write  the operator, or a key of that tenant that is not read-only.
 *
 * Order of the checks, chosen so nothing leaks: no or bad credentials → 401;
 * a key of another tenant → 404, the answer a missing tenant gets, before
 * any other check (a 403 would confirm the tenant exists); then 403 for a
 * read-only key writing or a key calling an operator route.
 *
 * Authentication runs in two hooks around the rate limiter: the first
 * (onRequest) resolves the principal without answering, so the limiter can
 * count a valid key in its own bucket and anything else per address
 * (including every failed guess); the second (preParsing, before any body
 * is read) enforces.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseApiKey, secretMatches } from '../store/api-key-store.js';
import type { AdminContext, Principal } from './context.js';
import { AdminError, notFound } from './errors.js';

export type Access = 'public' | 'operator' | 'tenant-read' | 'tenant-write';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the first auth hook when the credentials are valid. */
    principal?: Principal;
  }
  interface FastifyContextConfig {
    access?: Access;
  }
}

function presentedToken(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(auth);
    return m ? m[1] : undefined;
  }
  const key = req.headers['x-api-key'];
  return typeof key === 'string' ? key.trim() : undefined;
}

function sameSecret(a: string, b: string): boolean {
  // Hashing first gives equal lengths, so timingSafeEqual leaks nothing about the length either.
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** First hook: who is calling (undefined principal = nobody known). */
export function resolvePrincipal(ctx: AdminContext) {
  return async (req: FastifyRequest): Promise<void> => {
    if ((req.routeOptions.config.access ?? 'public') === 'public') return;
    const token = presentedToken(req);
    if (token === undefined || token.length > 512) return;
    const operator = ctx.deps.adminToken;
    if (operator !== undefined && operator.length > 0 && sameSecret(token, operator)) {
      req.principal = { kind: 'operator' };
      return;
    }
    const parsed = parseApiKey(token);
    if (!parsed) return;
    const rec = await ctx.store(() => ctx.deps.keys.get(parsed.id));
    if (rec && secretMatches(parsed.secret, rec.secretHash)) {
      req.principal = { kind: 'key', id: rec.id, tenant: rec.tenant, readOnly: rec.readOnly };
    }
  };
}

/** Rate-limit bucket: the credential when valid, else the client address. */
export function rateLimitKey(req: FastifyRequest): string {
  const p = req.principal;
  if (p?.kind === 'operator') return 'operator';
  if (p?.kind === 'key') return `key:${p.id}`;
  return `ip:${req.ip}`;
}

/** Second hook: enforces the route's access rule. */
export function enforceAccess() {
  return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const access = req.routeOptions.config.access ?? 'public';
    if (access === 'public') return;
    const p = req.principal;
    if (!p) throw new AdminError('DP_ADMIN_UNAUTHORIZED');
    if (p.kind === 'operator') return;
    const tenant = (req.params as { tenant?: string } | undefined)?.tenant;
    if (tenant !== undefined && tenant !== p.tenant) throw notFound(`tenant ${tenant}`);
    if (access === 'operator') throw new AdminError('DP_ADMIN_FORBIDDEN', 'only the operator token may do this');
    if (access === 'tenant-write' && p.readOnly) throw new AdminError('DP_ADMIN_FORBIDDEN', 'this API key is read-only');
  };
}
