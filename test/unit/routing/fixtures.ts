/** Builders shared by the routing tests: a small valid tenant, facts, and plan readers. */
import type { Extension, Route, TenantDocument } from '../../../src/routing/model.js';
import type { RoutingFacts } from '../../../src/routing/facts.js';
import type { Evaluation } from '../../../src/routing/engine.js';
import type { PlanStep, PlanTarget, RingStep } from '../../../src/routing/plan.js';

/** Placeholder digest secrets: the routing layer only checks their shape. */
export const SIP = Object.freeze({ ha1Md5: '0123456789abcdef0123456789abcdef', ha1Sha256: '0123456789abcdef'.repeat(4) });

/** Monday 2025-01-06 10:00 in Asia/Shanghai (UTC+8, no DST). */
export const MON_10_00 = Date.UTC(2025, 0, 6, 2, 0);

export function ext(number: string, extra: Partial<Extension> = {}): Extension {
  return { number, sip: { ...SIP }, ...extra };
}

/** A route with one unconditional rule. */
export function route(id: string, actions: Route['rules'][number]['actions']): Route {
  return { id, rules: [{ id: 'only', actions }] };
}

/**
 * Tenant "t1": 400 number → route "main", extensions 1001-1005, a carrier
 * trunk "carrier" and a gateway "gw" reaching everything. `over` replaces
 * whole top-level fields.
 */
export function tenantDoc(over: Partial<TenantDocument> = {}): TenantDocument {
  return {
    id: 't1',
    numbers: [{ number: '4008123456', route: 'main' }],
    extensions: ['1001', '1002', '1003', '1004', '1005'].map((n) => ext(n)),
    inboundTrunks: [{ id: 'carrier', sources: ['10.0.0.1'] }],
    outboundGateways: [{ id: 'gw', host: 'gw.example.invalid' }],
    routes: [route('main', [{ kind: 'ring', targets: [{ extension: '1001' }] }])],
    ...over,
  };
}

/** A carrier call to the 400 number from a mobile, Monday 10:00. */
export function facts(over: Partial<RoutingFacts> = {}): RoutingFacts {
  return {
    tenant: 't1',
    origin: { kind: 'trunk', trunk: 'carrier' },
    called: '4008123456',
    caller: '13812345678',
    time: MON_10_00,
    seed: 1,
    ...over,
  };
}

export function fromExtension(extension: string, called: string, over: Partial<RoutingFacts> = {}): RoutingFacts {
  return facts({ origin: { kind: 'extension', extension }, called, caller: undefined, ...over });
}

export function step(ev: Evaluation, i: number): PlanStep {
  const s = ev.plan.steps[i];
  if (!s) throw new Error(`plan has no step ${i}: ${JSON.stringify(ev.plan.steps)}`);
  return s;
}

export function ring(ev: Evaluation, i = 0): RingStep {
  const s = step(ev, i);
  if (s.kind !== 'ring') throw new Error(`step ${i} is ${s.kind}, not ring: ${JSON.stringify(s)}`);
  return s;
}

export function label(t: PlanTarget): string {
  return t.kind === 'extension' ? t.extension : t.number;
}

/** Groups of a ring step as labels: [['1001'], ['1002', '+8613...']]. */
export function groupsOf(s: RingStep): string[][] {
  return s.groups.map((g) => g.targets.map(label));
}

/** The order in which targets ring, flattened. */
export function orderOf(s: RingStep): string[] {
  return groupsOf(s).flat();
}
