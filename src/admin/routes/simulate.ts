/**
 * POST /v1/tenants/{tenant}/simulate: what the engine would do with a call,
 * without placing it. The same `evaluate` the call path runs, with
 * `explain: true` (every rule tried, each condition with its result).
 *
 * Differences from a real call, all deliberate:
 *   - no round-robin counter is incremented (the store would record a call
 *     that never happened): a round-robin step comes back in configured
 *     order with its `counter.key`;
 *   - the random seed defaults to 0, so two simulations agree;
 *   - the origin is a carrier trunk of the tenant (the one named, else the
 *     first that may deliver the called number), or an extension with
 *     `fromExtension`.
 * With `digit`, a plan that reaches an IVR menu is evaluated a second time
 * with those digits, as the executor does after collecting them.
 */
import type { FastifyInstance } from 'fastify';
import {
  compileTenant, evaluate, RoutingError, type CompiledTenant, type Evaluation, type RoutingFacts,
} from '../../routing/index.js';
import type { AdminContext } from '../context.js';
import { AdminError } from '../errors.js';
import { SIMULATE_BODY } from '../schemas.js';
import { paramsSchema } from './collections.js';

interface SimulateBody {
  called: string;
  caller?: string;
  time?: string | number;
  digit?: string;
  trunk?: string;
  fromExtension?: string;
  callerRegion?: { province?: string; city?: string };
  seed?: number;
}

export function registerSimulateRoute(app: FastifyInstance, ctx: AdminContext): void {
  app.post('/v1/tenants/:tenant/simulate', {
    config: { access: 'tenant-read' },
    schema: { tags: ['simulate'], summary: 'Dry-run the routing of a call: the plan and the explanation', params: paramsSchema(), body: SIMULATE_BODY },
  }, async (req) => {
    const tenant = (req.params as { tenant: string }).tenant;
    const body = req.body as SimulateBody;
    const cur = await ctx.readTenant(tenant);
    const compiled = compiledFor(ctx, tenant, cur.version, cur.doc);

    const time = typeof body.time === 'number' ? body.time : body.time !== undefined ? Date.parse(body.time) : ctx.now();
    if (!Number.isFinite(time) || time < 0) {
      throw new AdminError('DP_ADMIN_VALIDATION', undefined, { issues: [{ in: 'body', path: '/time', message: 'must be an ISO 8601 date-time (e.g. 2025-03-03T10:00:00+08:00) or epoch milliseconds' }] });
    }
    const region = body.callerRegion ?? (body.caller !== undefined ? ctx.deps.region?.(body.caller) : undefined);
    const base: Omit<RoutingFacts, 'origin'> = {
      tenant, called: body.called, time, seed: body.seed ?? 0,
      ...(body.caller !== undefined ? { caller: body.caller } : {}),
      ...(region !== undefined ? { callerRegion: region } : {}),
    };
    const options = { global: ctx.deps.cache.global().compiled, explain: true };

    let facts: RoutingFacts;
    let ev: Evaluation;
    if (body.fromExtension !== undefined) {
      facts = { ...base, origin: { kind: 'extension', extension: body.fromExtension } };
      ev = evaluate(compiled, facts, options);
    } else {
      const trunks = body.trunk !== undefined ? [body.trunk] : (cur.doc.inboundTrunks ?? []).map((t) => t.id);
      if (trunks.length === 0) {
        throw new AdminError('DP_ADMIN_UNPROCESSABLE', `tenant ${tenant} has no inbound trunk, so no call can arrive from a carrier; simulate a call from an extension with fromExtension`);
      }
      // The executor picks the trunk that may deliver the number; a refusal by one trunk means "try the next".
      let first: { facts: RoutingFacts; ev: Evaluation } | undefined;
      let chosen: { facts: RoutingFacts; ev: Evaluation } | undefined;
      for (const trunk of trunks) {
        const f: RoutingFacts = { ...base, origin: { kind: 'trunk', trunk } };
        const e = evaluate(compiled, f, options);
        first ??= { facts: f, ev: e };
        if (e.explanation.outcome !== 'refused') { chosen = { facts: f, ev: e }; break; }
      }
      ({ facts, ev } = (chosen ?? first) as { facts: RoutingFacts; ev: Evaluation });
    }

    const out: Record<string, unknown> = { tenantVersion: String(cur.version), facts, plan: ev.plan, explanation: ev.explanation };
    if (body.digit !== undefined) {
      const ivr = ev.plan.steps.find((s) => s.kind === 'ivr');
      if (ivr?.kind === 'ivr') {
        const ivrFacts: RoutingFacts = { ...facts, ivr: { menu: ivr.menu, digits: body.digit } };
        const after = evaluate(compiled, ivrFacts, options);
        out.ivr = { menu: ivr.menu, digits: body.digit, plan: after.plan, explanation: after.explanation };
      } else {
        out.notes = ['the plan reaches no IVR menu: digit was not used'];
      }
    }
    return out;
  });
}

/** The cache's compiled rules when they are of the version just read; else compiled here (a fresh write not yet loaded). */
function compiledFor(ctx: AdminContext, tenant: string, version: number, doc: Parameters<typeof compileTenant>[0]): CompiledTenant {
  const cached = ctx.deps.cache.get(tenant);
  if (cached?.version === version) return cached.compiled;
  try {
    return compileTenant(doc);
  } catch (err) {
    if (err instanceof RoutingError) {
      throw new AdminError('DP_ADMIN_UNPROCESSABLE', `the stored tenant document does not compile: ${err.message}`);
    }
    throw err;
  }
}
