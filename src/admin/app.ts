/**
 * The admin API (Fastify), built but not listening: main.ts listens, tests
 * use `inject`. Everything under /v1; OpenAPI at /docs/json, browsable at
 * /docs; liveness /health, readiness /ready.
 *
 * Validation: Fastify's ajv with the routing schemas (schemas.ts). Its
 * defaults are changed on purpose: no `removeAdditional` (an unknown field
 * must be a 400, not silently dropped), no type coercion (a "5" is not a
 * 5), no defaults inserted, every error reported, `verbose` so
 * routing/validate.ts's formatter can fold oneOf noise into one message.
 */
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import rateLimit, { type RateLimitPluginOptions } from '@fastify/rate-limit';
import type { ErrorObject } from 'ajv';
import { toIssues } from '../routing/validate.js';
import { enforceAccess, rateLimitKey, resolvePrincipal } from './auth.js';
import { AdminContext, type AdminDeps } from './context.js';
import { AdminError, type AdminIssue } from './errors.js';
import { registerApiKeyRoutes } from './routes/api-keys.js';
import { registerCallDataRoutes } from './routes/call-data.js';
import { registerWebhookRoutes } from './routes/webhooks.js';
import { registerCollectionRoutes } from './routes/collections.js';
import { registerRegistrationRoutes } from './routes/registrations.js';
import { registerSimulateRoute } from './routes/simulate.js';
import { registerTenantRoutes } from './routes/tenants.js';
import { documentResponses, ERROR_SCHEMA } from './openapi.js';
import { registerGlobalRoutes } from './routes/global.js';
import { registerPromptRoutes } from './routes/prompts.js';
import { sharedSchemas } from './schemas.js';

export type { AdminDeps } from './context.js';

const DEFAULT_BODY_LIMIT = 1024 * 1024;
/** /ready answers within this even when the store hangs. */
const READY_PROBE_MS = 1000;

/** Routes of each app built here, for tests that must try every route (tenant isolation). */
const registeredRoutes = new WeakMap<FastifyInstance, Array<{ method: string; url: string; access: string }>>();

export function adminRoutes(app: FastifyInstance): ReadonlyArray<{ method: string; url: string; access: string }> {
  return registeredRoutes.get(app) ?? [];
}

const VALIDATION_CONTEXT: Record<string, AdminIssue['in']> = { body: 'body', querystring: 'query', params: 'params', headers: 'headers' };

export async function buildAdminApp(deps: AdminDeps): Promise<FastifyInstance> {
  const ctx = new AdminContext(deps);
  const app = Fastify({
    loggerInstance: deps.log,
    bodyLimit: deps.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // Every /v1 route states who may call it; a route without `access` would be public.
    ajv: {
      customOptions: {
        removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: true, verbose: true,
        discriminator: true, strict: true, strictRequired: false,
      },
    },
    // Path parameters longer than this are not ours (ids are ≤ 64 characters).
    routerOptions: { maxParamLength: 200 },
  });
  app.decorateRequest('principal', undefined);

  const routes: Array<{ method: string; url: string; access: string }> = [];
  registeredRoutes.set(app, routes);
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/v1') && route.config?.access === undefined) {
      throw new Error(`admin route ${String(route.method)} ${route.url} has no access rule`);
    }
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') routes.push({ method, url: route.url, access: route.config?.access ?? 'public' });
    }
  });

  // JSON only: Fastify's text/plain parser is removed so a mistyped upload is a 415.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((err: FastifyError | AdminError, req, reply) => {
    if (err instanceof AdminError) {
      if (err.status >= 500) req.log.warn({ err }, 'admin request failed');
      return reply.code(err.status).send(err.toBody());
    }
    if (err.validation) {
      const where = VALIDATION_CONTEXT[err.validationContext ?? 'body'] ?? 'body';
      const issues = toIssues(err.validation as unknown as ErrorObject[]).map((i) => {
        // Point at the unknown field itself, not at the object holding it.
        const unknown = /^has unknown property "(.*)"$/.exec(i.message);
        return unknown ? { in: where, path: `${i.path}/${(unknown[1] as string).replace(/~/g, "~0").replace(/\//g, "~1")}`, message: 'is not a known field' } : { in: where, path: i.path, message: i.message };
      });
      return reply.code(400).send(new AdminError('DP_ADMIN_VALIDATION', `${where} does not match its schema`, { issues }).toBody());
    }
    const status = err.statusCode ?? 500;
    if (status === 413) return reply.code(413).send(new AdminError('DP_ADMIN_TOO_LARGE').toBody());
    if (status === 415) return reply.code(415).send(new AdminError('DP_ADMIN_MEDIA_TYPE').toBody());
    if (status === 429) return reply.code(429).send(new AdminError('DP_ADMIN_RATE_LIMITED').toBody());
    if (status >= 400 && status < 500) return reply.code(400).send(new AdminError('DP_ADMIN_BAD_BODY', err.message).toBody());
    req.log.error({ err }, 'admin request failed');
    return reply.code(500).send(new AdminError('DP_ADMIN_INTERNAL').toBody());
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(new AdminError('DP_ADMIN_NOT_FOUND', `no endpoint ${req.method} ${req.url.split('?')[0]}`).toBody()));

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Dialplane admin API', version: '1', description: 'Tenants, numbers, extensions, groups, routes... of the Dialplane routing engine. Versions: ETag / If-Match; errors: { error: { code, message, issues } }.' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'Operator token or tenant API key (dpk_...)' },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        },
      },
      security: [{ bearer: [] }, { apiKey: [] }],
    },
    // Responses are documented here, not on the routes (see openapi.ts: a route's response schema would filter what it sends).
    transform: ({ schema, url, route }) => ({ schema: documentResponses(schema as Record<string, unknown>, route) ?? schema, url }),
    // Shared schemas keep their ids as component names (dp.extension, dp.route...).
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  for (const s of sharedSchemas()) app.addSchema(s);
  app.addSchema(ERROR_SCHEMA);

  app.addHook('onRequest', resolvePrincipal(ctx));
  // With Redis, one budget per credential across the cluster. If Redis fails
  // (down, or stalled past the client's 1 s command timeout) the request is
  // let through unlimited (skipOnError) rather than answered 500: the admin
  // API must stay usable to repair things during an outage, and the limit
  // is for politeness and guessing, while guessing a tenant key needs the
  // key store, which is the same Redis and is down too. The outage itself
  // is logged and counted by the store's client.
  const shared: Partial<RateLimitPluginOptions> = deps.sharedRateLimit
    ? { redis: deps.sharedRateLimit.redis, nameSpace: deps.sharedRateLimit.nameSpace, skipOnError: true }
    : {};
  await app.register(rateLimit, {
    ...shared,
    global: true,
    max: deps.rateLimit?.max ?? 600,
    timeWindow: deps.rateLimit?.timeWindowMs ?? 60_000,
    keyGenerator: rateLimitKey,
    // Probes of a load balancer must never be throttled.
    allowList: (req) => req.url === '/health' || req.url === '/ready',
    errorResponseBuilder: () => new AdminError('DP_ADMIN_RATE_LIMITED'),
  });
  // Enforcement comes after the limiter, whose hook is route-level and so runs
  // after every instance-level onRequest hook: preParsing is the first stage
  // after it (and still before any body is read).
  const enforce = enforceAccess();
  app.addHook('preParsing', async (req, reply, payload) => {
    await enforce(req, reply);
    return payload;
  });

  app.get('/health', { schema: { tags: ['health'], summary: 'Liveness' } }, async () => ({ status: 'ok' }));
  app.get('/ready', { schema: { tags: ['health'], summary: 'Readiness: store reachable, listeners bound' } }, async (_req, reply) => {
    const listeners = deps.ready();
    const store = await probe(() => deps.store.globalVersion(), READY_PROBE_MS);
    const ok = listeners && store;
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not-ready', checks: { listeners, store } });
  });

  registerTenantRoutes(app, ctx);
  registerGlobalRoutes(app, ctx);
  registerCollectionRoutes(app, ctx);
  registerSimulateRoute(app, ctx);
  registerRegistrationRoutes(app, ctx);
  registerApiKeyRoutes(app, ctx);
  registerCallDataRoutes(app, ctx);
  if (deps.webhooks) registerWebhookRoutes(app, ctx, deps.webhooks);
  // A plugin of its own (audio body parser for the upload only): registered, then loaded before the app is handed out.
  if (deps.prompts) await registerPromptRoutes(app, ctx, deps.prompts);
  return app;
}

async function probe(call: () => Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs); });
  try {
    return await Promise.race([call().then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
