/**
 * The routing engine: compiled tenant + facts → plan + explanation.
 *
 * Resolution of the called number:
 * - IVR continuation (facts.ivr): the menu's route, with the digits as a
 *   fact; digits equal to an extension ring it when the menu allows it;
 * - from a carrier trunk: the trunk must be allowed to deliver the number;
 *   then exact number → longest prefix/range block → its route. A 2-6 digit
 *   code is a group short number only when the caller's number is a member
 *   of a plan defining it; anybody else gets 404, exactly like an unknown
 *   number, so outsiders cannot probe which codes exist;
 * - from an extension: an extension number → that extension; a short code
 *   of a plan the caller belongs to → the member; a short code of a plan
 *   the caller does not belong to → 403 (the caller is ours, say why);
 *   one of the tenant's own numbers → its route; anything else → an
 *   outbound call through the tenant's gateways.
 *
 * Routes: rules in order, the first whose conditions all hold emits its
 * action chain. A blacklisted caller only ever matches rules written for
 * blacklisted callers (`callerBlacklisted: true`); when none matches they
 * get the tenant's blacklist status (603 by default).
 *
 * Round-robin design: the engine keeps no counters. A round-robin ring step
 * names its counter key (`step.counter.key`). If facts.counters holds a
 * value for that key the order is applied at once; otherwise the step is
 * returned in configured order without `counter.value`, and the executor,
 * when (and only when) it reaches the step, does one atomic INCR of the key
 * and calls `applyCounter(step, value)`. Incrementing on reaching the step,
 * not on planning it, keeps the rotation exact when the step is a failover
 * that most calls never reach.
 */
import {
  EMPTY_GLOBAL,
  type CompiledAction, type CompiledExtension, type CompiledGlobal, type CompiledRule, type CompiledTenant,
  type CompiledTrunk, type ConditionInput, type RingSpec, type ShortMember, type TargetUnit,
} from './compile.js';
import { RoutingError, type RoutingErrorCode } from './errors.js';
import type { RoutingFacts } from './facts.js';
import { formatNumber, numberKey, parseNumber, type NumberClass, type PhoneNumber } from './numbering.js';
import {
  FAILURE_KINDS, reasonPhrase,
  type AnnounceStep, type ExternalTarget, type FailureKind, type ForwardStep, type GatewayHop, type NextStep, type Plan,
  type PlanRingGroup, type PlanStep, type PlanTarget, type PresentedCaller, type RingStep, type StepSource,
} from './plan.js';
import { regionKey } from './region.js';
import { describeScheduleStatus, scheduleStatus } from './schedule.js';
import { orderTargets, roundRobinStart, stepSeed } from './strategies.js';

export { compileTenant, compileGlobal, EMPTY_GLOBAL } from './compile.js';
export type { CompiledTenant, CompiledGlobal } from './compile.js';

/** Forwarding between routes nests at most this deep (references.ts already refuses cycles). */
const MAX_FORWARD_DEPTH = 8;
/** Outbound calls ring until the far end gives up; the proxy's timer C caps them anyway. */
const OUTBOUND_TIMEOUT_MS = 120_000;

export interface EvaluateOptions {
  /** Global blacklist and carrier data (default: empty). */
  global?: CompiledGlobal;
  /** Trace every rule and condition (dry-run API). Off on the call path: only the matched rule is named. */
  explain?: boolean;
}

export type Outcome =
  /** The tenant's configuration decided (this includes a rule that rejects). */
  | 'routed'
  | 'not-found'
  | 'invalid-number'
  /** Refused by policy: unknown trunk/extension, number not on the trunk, short code of a plan the caller is not in, no outbound caller ID. */
  | 'refused'
  | 'blacklisted'
  | 'no-rule-matched'
  /** Configuration changed under a running call (IVR menu gone) or forwarding too deep. */
  | 'error';

/** The coded error of each outcome other than `routed` (one list: errors.ts). */
export const OUTCOME_CODES: Readonly<Record<Exclude<Outcome, 'routed'>, RoutingErrorCode>> = {
  'not-found': 'DP_ROUTE_NOT_FOUND',
  'invalid-number': 'DP_ROUTE_BAD_CALLED',
  'refused': 'DP_ROUTE_REFUSED',
  'blacklisted': 'DP_ROUTE_BLACKLISTED',
  'no-rule-matched': 'DP_ROUTE_NO_MATCH',
  'error': 'DP_ROUTE_STALE',
};

export interface ConditionTrace {
  condition: string;
  ok: boolean;
  detail: string;
}

export interface RuleTrace {
  rule: string;
  matched: boolean;
  conditions: ConditionTrace[];
}

export interface RouteTrace {
  route: string;
  /** Why this route was evaluated: the number entry, an IVR menu, a forward... */
  via: string;
  matchedRule?: string;
  /** Only with `explain: true`: every rule tried, each condition with its result. */
  rules?: RuleTrace[];
}

export interface Explanation {
  outcome: Outcome;
  /** For outcomes other than `routed`: the coded error, for logs and CDRs. */
  code?: RoutingErrorCode;
  /** One sentence: what happened and why. */
  summary: string;
  called: {
    input: string;
    number?: string;
    class?: NumberClass;
    /** How the called number was resolved. */
    match?: { kind: 'exact' | 'prefix' | 'range' | 'extension' | 'short-code' | 'ivr-menu' | 'ivr-extension' | 'outbound'; entry: string };
  };
  caller: {
    input?: string;
    number?: string;
    extension?: string;
    region?: string;
    blacklisted?: { list: 'global' | 'tenant'; match: 'exact' | 'prefix' | 'anonymous'; entry: string };
    shortCode?: { plan: string; code: string };
  };
  routes: RouteTrace[];
}

export interface Evaluation {
  plan: Plan;
  explanation: Explanation;
}

export function evaluate(tenant: CompiledTenant, facts: RoutingFacts, options: EvaluateOptions = {}): Evaluation {
  checkFacts(tenant, facts);
  return new Evaluator(tenant, facts, options.global ?? EMPTY_GLOBAL, options.explain ?? false).run();
}

/**
 * Applies a round-robin counter value (the result of INCR step.counter.key)
 * to a ring step the engine returned unrotated. Pure; returns a new step.
 * An extension's "after" group (its bound mobile) stays right behind it.
 */
export function applyCounter(step: RingStep, value: number): RingStep {
  if (!step.counter) throw new RoutingError('DP_ROUTE_BAD_FACTS', 'applyCounter: not a round-robin step');
  if (!Number.isFinite(value)) throw new RoutingError('DP_ROUTE_BAD_FACTS', `applyCounter: counter value ${value} is not a number`);
  const units: PlanRingGroup[][] = [];
  for (const g of step.groups) {
    const prev = units[units.length - 1];
    if (prev && isCompanionGroup(g, prev)) prev.push(g);
    else units.push([g]);
  }
  const start = roundRobinStart(value, units.length);
  const rotated = [...units.slice(start), ...units.slice(0, start)];
  return { ...step, groups: rotated.flat(), counter: { key: step.counter.key, value } };
}

function isCompanionGroup(g: PlanRingGroup, unit: readonly PlanRingGroup[]): boolean {
  const ext = unit[0]?.targets.find((t) => t.kind === 'extension');
  return ext !== undefined && g.targets.length > 0 && g.targets.every((t) => t.kind === 'external' && t.forExtension === ext.extension);
}

function checkFacts(t: CompiledTenant, f: RoutingFacts): void {
  if (f.tenant !== t.id) throw new RoutingError('DP_ROUTE_BAD_FACTS', `facts are for tenant "${f.tenant}" but the compiled tenant is "${t.id}"`);
  if (typeof f.time !== 'number' || !Number.isFinite(f.time)) throw new RoutingError('DP_ROUTE_BAD_FACTS', 'time must be epoch milliseconds');
  if (typeof f.seed !== 'number' || !Number.isInteger(f.seed)) throw new RoutingError('DP_ROUTE_BAD_FACTS', 'seed must be an integer');
  if (typeof f.called !== 'string') throw new RoutingError('DP_ROUTE_BAD_FACTS', 'called must be a string');
}

type Blacklisting = { listed: false } | { listed: true; list: 'global' | 'tenant'; match: 'exact' | 'prefix' | 'anonymous'; entry: string };
interface RegionInfo { provinceKey: string | undefined; cityKey: string | undefined; text: string }

const NOT_LISTED: Blacklisting = { listed: false };
const SEPARATORS = /[\s\-.()]/g;

class Evaluator implements ConditionInput {
  private readonly steps: PlanStep[] = [];
  private readonly traces: RouteTrace[] = [];
  private readonly expl: Explanation;
  private readonly trunk: CompiledTrunk | undefined;
  private readonly callerExt: CompiledExtension | undefined;
  private callerNumber: PhoneNumber | undefined;
  private calledNumber: PhoneNumber | undefined;
  private externalCallerId: PhoneNumber | undefined;
  private presented: PresentedCaller = {};
  private outcome: Outcome = 'routed';
  private randomSteps = 0;
  private regionMemo: RegionInfo | undefined;
  private blacklistMemo: Blacklisting | undefined;
  private scheduleMemo: Map<string, boolean> | undefined;

  constructor(
    private readonly t: CompiledTenant,
    private readonly f: RoutingFacts,
    private readonly global: CompiledGlobal,
    private readonly explain: boolean,
  ) {
    this.expl = { outcome: 'routed', summary: '', called: { input: f.called }, caller: {}, routes: this.traces };
    if (f.origin.kind === 'trunk') {
      this.trunk = t.trunks.get(f.origin.trunk);
      this.callerExt = undefined;
    } else {
      this.trunk = undefined;
      this.callerExt = t.extensions.get(f.origin.extension);
    }
  }

  run(): Evaluation {
    this.resolve();
    return this.finish();
  }

  /** Who calls, then what the called number is; emits the plan's steps. */
  private resolve(): void {
    const o = this.f.origin;
    if (o.kind === 'trunk') {
      if (!this.trunk) return this.refuse(403, `call from unknown trunk "${o.trunk}"`, 'refused');
      this.identifyTrunkCaller(this.trunk);
    } else {
      const ext = this.callerExt;
      if (!ext) return this.refuse(403, `call from unknown extension ${o.extension}`, 'refused');
      this.expl.caller.extension = ext.number;
      this.presented = ext.name !== undefined ? { number: ext.number, name: ext.name } : { number: ext.number };
      this.externalCallerId = ext.outboundCallerId ?? this.t.outboundCallerId;
    }
    if (this.f.ivr) return this.ivrContinuation(this.f.ivr.menu, this.f.ivr.digits);
    if (this.trunk) return this.inbound(this.trunk);
    if (this.callerExt) return this.internal(this.callerExt);
  }

  // ---- resolution of the called number ------------------------------------

  private identifyTrunkCaller(trunk: CompiledTrunk): void {
    const raw = this.f.caller;
    if (raw === undefined || raw === '') return;
    this.expl.caller.input = raw;
    const r = parseNumber(raw, trunk.parseOpts);
    if (!r.ok) return;
    this.callerNumber = r.number;
    this.externalCallerId = r.number;
    this.expl.caller.number = r.number.e164 ?? r.number.national;
    this.presented = { number: r.number.national };
  }

  private inbound(trunk: CompiledTrunk): void {
    const r = parseNumber(this.f.called, trunk.parseOpts);
    if (!r.ok) return this.refuse(484, `called number unreadable: ${r.error}`, 'invalid-number');
    const called = this.setCalled(r.number);

    if (called.class === 'internal') {
      // A short code from a carrier: only a member's own mobile may use it.
      const memberships = this.callerNumber ? this.t.shortPlans.byNumber.get(numberKey(this.callerNumber)) : undefined;
      for (const m of memberships ?? []) {
        const target = this.t.shortPlans.codes.get(m.plan)?.get(called.national);
        if (target) {
          if (this.blacklist().listed) return this.refuseBlacklisted();
          return this.shortCodeCall(m, target);
        }
      }
      const known = this.t.shortPlans.plansByCode.has(called.national);
      return this.refuse(404, known
        ? `short code ${called.national} dialled by a caller who is not a member of its plan (outside callers get 404, like an unknown number)`
        : `${called.national} is not a number of this tenant`, 'not-found');
    }

    const key = numberKey(called);
    const e164Digits = called.e164?.slice(1);
    if (trunk.allowed) {
      const ok = e164Digits !== undefined ? trunk.allowed.prefixes.matches(e164Digits) : trunk.allowed.short.has(key);
      if (!ok) return this.refuse(403, `trunk "${trunk.id}" may not deliver ${called.e164 ?? called.national}`, 'refused');
    }
    const exact = this.t.exactNumbers.get(key);
    if (exact) {
      this.expl.called.match = { kind: 'exact', entry: exact.entry };
      this.emitRoute(exact.route, exact.entry, 0);
      return;
    }
    const block = e164Digits !== undefined ? this.t.numberBlocks.longest(e164Digits) : undefined;
    if (block) {
      this.expl.called.match = { kind: block.kind === 'block' ? 'range' : 'prefix', entry: block.value.entry };
      this.emitRoute(block.value.route, block.value.entry, 0);
      return;
    }
    this.refuse(404, `${called.e164 ?? called.national} is not a number of this tenant`, 'not-found');
  }

  private internal(ext: CompiledExtension): void {
    const digits = this.f.called.trim().replace(SEPARATORS, '');
    const target = this.t.extensions.get(digits);
    if (target) {
      this.expl.called.match = { kind: 'extension', entry: `extension ${digits}` };
      this.expl.called.number = digits;
      this.expl.called.class = 'internal';
      this.calledNumber = { class: 'internal', e164: undefined, national: digits };
      this.dialExtension(target, 0);
      return;
    }
    for (const m of this.t.shortPlans.byExtension.get(ext.number) ?? []) {
      const member = this.t.shortPlans.codes.get(m.plan)?.get(digits);
      if (member) {
        this.calledNumber = { class: 'internal', e164: undefined, national: digits };
        return this.shortCodeCall(m, member);
      }
    }
    const plans = this.t.shortPlans.plansByCode.get(digits);
    if (plans) return this.refuse(403, `extension ${ext.number} is not a member of short-number plan ${plans.map((p) => `"${p}"`).join(', ')} that defines ${digits}`, 'refused');

    const r = parseNumber(this.f.called, this.t.parseOpts);
    if (!r.ok) return this.refuse(484, `dialled number unreadable: ${r.error}`, 'invalid-number');
    const called = this.setCalled(r.number);
    if (called.class === 'internal') return this.refuse(404, `${called.national} is neither an extension nor a short code`, 'not-found');

    // One of our own numbers: route it as if it came in from outside.
    const key = numberKey(called);
    const exact = this.t.exactNumbers.get(key);
    const block = exact ? undefined : called.e164 !== undefined ? this.t.numberBlocks.longest(called.e164.slice(1)) : undefined;
    const own = exact ?? block?.value;
    if (own) {
      this.expl.called.match = { kind: exact ? 'exact' : block?.kind === 'block' ? 'range' : 'prefix', entry: own.entry };
      this.emitRoute(own.route, own.entry, 0);
      return;
    }
    this.expl.called.match = { kind: 'outbound', entry: `outbound call to ${called.e164 ?? called.national}` };
    this.outboundCall(called, { builtin: 'outbound call' });
  }

  private ivrContinuation(menuId: string, digits: string): void {
    const r = parseNumber(this.f.called, this.trunk?.parseOpts ?? this.t.parseOpts);
    if (r.ok) this.setCalled(r.number);
    const menu = this.t.ivrMenus.get(menuId);
    if (!menu) return this.refuse(500, `IVR menu "${menuId}" no longer exists`, 'error');
    const ext = menu.extensionDialling ? this.t.extensions.get(digits) : undefined;
    if (ext) {
      this.expl.called.match = { kind: 'ivr-extension', entry: `IVR menu "${menu.id}": extension ${digits}` };
      if (this.blacklist().listed) return this.refuseBlacklisted();
      this.dialExtension(ext, 0);
      return;
    }
    this.expl.called.match = { kind: 'ivr-menu', entry: `IVR menu "${menu.id}" digits "${digits}"` };
    this.emitRoute(menu.route, `IVR menu "${menu.id}"`, 0);
  }

  private shortCodeCall(callerMembership: ShortMember, target: ShortMember): void {
    const callerName = callerMembership.name ?? this.callerExt?.name;
    this.presented = callerName !== undefined
      ? { number: callerMembership.code, name: callerName, shortCodePlan: callerMembership.plan }
      : { number: callerMembership.code, shortCodePlan: callerMembership.plan };
    this.expl.caller.shortCode = { plan: callerMembership.plan, code: callerMembership.code };
    this.expl.called.match = { kind: 'short-code', entry: `short code ${target.code} of plan "${target.plan}"` };
    this.expl.called.number = target.code;
    this.expl.called.class = 'internal';
    if (target.extension !== undefined) {
      const ext = this.t.extensions.get(target.extension);
      if (ext) return this.dialExtension(ext, 0);
    }
    if (target.number) return this.outboundCall(target.number, { builtin: `short code ${target.code} (plan "${target.plan}")` });
    this.refuse(404, `short code ${target.code} leads nowhere`, 'not-found');
  }

  // ---- emission ----------------------------------------------------------

  /** An extension dialled directly: its own route, or ring it and fall to its voicemail. */
  private dialExtension(ext: CompiledExtension, depth: number): void {
    if (ext.route !== undefined) {
      this.emitRoute(ext.route, `extension ${ext.number}`, depth);
      return;
    }
    const source: StepSource = { builtin: `extension ${ext.number}` };
    const ringAt = this.steps.length;
    const spec: RingSpec = {
      strategy: 'sequential',
      units: [{ kind: 'extension', extension: ext, timeoutMs: ext.timeoutMs, weight: 1 }],
      weights: [1], overallTimeoutMs: this.t.overallTimeoutMs, stopOnDecline: true, counterKey: undefined,
    };
    const step = this.ringStep(spec, source);
    this.steps.push(step);
    const next: NextStep = ext.voicemail !== undefined ? ringAt + 1 : 'stop';
    step.onFail = allFailures(next);
    if (ext.voicemail !== undefined) this.steps.push({ kind: 'voicemail', box: ext.voicemail, source });
  }

  private outboundCall(n: PhoneNumber, source: StepSource): void {
    if (this.externalCallerId === undefined && n.emergency !== true) {
      return this.refuse(403, 'outbound calls need an outbound caller ID (the extension\'s or the tenant\'s outboundCallerId)', 'refused');
    }
    const target = this.externalTarget(n, OUTBOUND_TIMEOUT_MS, undefined);
    if (target.gateways.length === 0) {
      return n.emergency === true
        ? this.refuse(503, `no outbound gateway for emergency number ${n.national}`, 'refused')
        : this.refuse(403, `no outbound gateway reaches ${n.e164 ?? n.national}`, 'refused');
    }
    this.steps.push({
      kind: 'ring', strategy: 'sequential', groups: [{ targets: [target], timeoutMs: target.timeoutMs }],
      stopOnDecline: true, onFail: allFailures('stop'), source,
    });
  }

  /** Evaluates a route and emits the matched rule's chain; returns the index of its first step. */
  private emitRoute(routeId: string, via: string, depth: number): number {
    const start = this.steps.length;
    const trace: RouteTrace = this.explain ? { route: routeId, via, rules: [] } : { route: routeId, via };
    this.traces.push(trace);
    if (depth > MAX_FORWARD_DEPTH) {
      this.refuse(500, `forwarding deeper than ${MAX_FORWARD_DEPTH} routes`, 'error');
      return start;
    }
    const route = this.t.routes.get(routeId);
    if (!route) {
      this.refuse(500, `route "${routeId}" does not exist`, 'error');
      return start;
    }
    const bl = this.blacklist();
    for (const rule of route.rules) {
      if (this.ruleMatches(rule, bl, trace)) {
        trace.matchedRule = rule.id;
        this.emitChain(rule, routeId, depth);
        return start;
      }
    }
    if (bl.listed) this.refuseBlacklisted();
    else this.refuse(480, `no rule of route "${routeId}" matched`, 'no-rule-matched');
    return start;
  }

  private ruleMatches(rule: CompiledRule, bl: Blacklisting, trace: RouteTrace): boolean {
    const blOk = rule.forBlacklisted === bl.listed;
    if (!this.explain) {
      if (!blOk) return false;
      for (const c of rule.conditions) if (!c.test(this)) return false;
      return true;
    }
    // Dry run: evaluate every condition, so the trace says everything that held or failed.
    const conditions: ConditionTrace[] = [];
    if (rule.forBlacklisted || bl.listed) {
      conditions.push({
        condition: 'callerBlacklisted',
        ok: blOk,
        detail: `caller is ${bl.listed ? `blacklisted (${bl.list} ${bl.match} ${bl.entry})` : 'not blacklisted'}; rule is for ${rule.forBlacklisted ? 'blacklisted' : 'other'} callers`,
      });
    }
    let all = blOk;
    for (const c of rule.conditions) {
      const ok = c.test(this);
      conditions.push({ condition: c.name, ok, detail: c.describe(this, ok) });
      all &&= ok;
    }
    trace.rules?.push({ rule: rule.id, matched: all, conditions });
    return all;
  }

  /** Emits the reachable actions of a rule; onFail/then refer to action indices, resolved to step indices at the end. */
  private emitChain(rule: CompiledRule, routeId: string, depth: number): void {
    const stepOf: Array<number | undefined> = new Array<number | undefined>(rule.actions.length);
    const fixups: Array<() => void> = [];
    const resolve = (n: number | 'stop'): NextStep => (n === 'stop' ? 'stop' : stepOf[n] ?? 'stop');
    rule.actions.forEach((a: CompiledAction, i) => {
      if (!rule.reachable[i]) return;
      const source: StepSource = { route: routeId, rule: rule.id, action: i };
      stepOf[i] = this.steps.length;
      switch (a.kind) {
        case 'ring': {
          const step = this.ringStep(a.ring, source);
          this.steps.push(step);
          fixups.push(() => { step.onFail = mapFailures(a.onFail, resolve); });
          return;
        }
        case 'forward-number': {
          const step: ForwardStep = { kind: 'forward', target: this.externalTarget(a.number, a.timeoutMs, undefined), onFail: allFailures('stop'), source };
          this.steps.push(step);
          fixups.push(() => { step.onFail = mapFailures(a.onFail, resolve); });
          return;
        }
        case 'forward-route':
          stepOf[i] = this.emitRoute(a.route, `forward from route "${routeId}" rule "${rule.id}"`, depth + 1);
          return;
        case 'ivr':
          this.steps.push({
            kind: 'ivr', menu: a.menu.id, prompt: a.menu.prompt, maxDigits: a.menu.maxDigits,
            digitTimeoutMs: a.menu.digitTimeoutMs, retries: a.menu.retries, source,
          });
          return;
        case 'announce': {
          const step: AnnounceStep = { kind: 'announce', prompt: a.prompt, then: 'hangup', source };
          this.steps.push(step);
          const then = a.then;
          if (then !== 'hangup') fixups.push(() => { const s = resolve(then); step.then = s === 'stop' ? 'hangup' : s; });
          return;
        }
        case 'reject':
          this.steps.push({ kind: 'reject', status: a.status, reason: a.reason ?? reasonPhrase(a.status), source });
          return;
        case 'voicemail':
          this.steps.push({ kind: 'voicemail', box: a.box, source });
          return;
      }
    });
    for (const fix of fixups) fix();
  }

  private ringStep(spec: RingSpec, source: StepSource): RingStep {
    let ordered: readonly TargetUnit[] = spec.units;
    let counter: RingStep['counter'];
    switch (spec.strategy) {
      case 'round-robin': {
        const key = spec.counterKey ?? '';
        const value = this.f.counters?.[key];
        if (value !== undefined) {
          ordered = orderTargets(spec.units, 'round-robin', spec.weights, value, 0);
          counter = { key, value };
        } else {
          counter = { key };
        }
        break;
      }
      case 'random':
      case 'weighted':
        ordered = orderTargets(spec.units, spec.strategy, spec.weights, 0, stepSeed(this.f.seed, this.randomSteps++));
        break;
      case 'sequential':
      case 'simultaneous':
        break;
    }
    const firsts: PlanTarget[][] = [];
    const afters: PlanTarget[][] = [];
    for (const u of ordered) {
      const first: PlanTarget[] = [];
      const after: PlanTarget[] = [];
      if (u.kind === 'extension') {
        const e = u.extension;
        first.push(e.name !== undefined
          ? { kind: 'extension', extension: e.number, name: e.name, timeoutMs: u.timeoutMs }
          : { kind: 'extension', extension: e.number, timeoutMs: u.timeoutMs });
        for (const n of e.alsoRing) {
          const t = this.externalTarget(n, u.timeoutMs, e.number);
          if (t.gateways.length > 0) (e.alsoRingMode === 'together' ? first : after).push(t);
        }
      } else {
        const t = this.externalTarget(u.number, u.timeoutMs, undefined);
        if (t.gateways.length > 0) first.push(t);
      }
      firsts.push(first);
      afters.push(after);
    }
    const groups: PlanRingGroup[] = [];
    if (spec.strategy === 'simultaneous') {
      pushGroup(groups, firsts.flat());
      pushGroup(groups, afters.flat());
    } else {
      firsts.forEach((first, i) => {
        pushGroup(groups, first);
        pushGroup(groups, afters[i] ?? []);
      });
    }
    const step: RingStep = { kind: 'ring', strategy: spec.strategy, groups, stopOnDecline: spec.stopOnDecline, onFail: allFailures('stop'), source };
    if (spec.overallTimeoutMs !== undefined) step.overallTimeoutMs = spec.overallTimeoutMs;
    if (counter) step.counter = counter;
    return step;
  }

  /**
   * An external number with its ordered gateways: those the number's carrier
   * is preferred on first (ported carrier, else the segment's original one),
   * then by priority. Each hop writes the numbers as its gateway wants them.
   */
  private externalTarget(n: PhoneNumber, timeoutMs: number, forExtension: string | undefined): ExternalTarget {
    const digits = n.e164?.slice(1);
    let carrier: ExternalTarget['carrier'];
    if (n.class === 'mobile' && digits !== undefined) {
      // The tenant's own knowledge first: it may be fresher than the operator's import.
      const ported = this.t.ported.get(digits) ?? this.global.ported.get(digits);
      if (ported !== undefined) carrier = { id: ported, source: 'ported' };
      else {
        const seg = this.global.segments.longest(digits);
        if (seg) carrier = { id: seg.value, source: 'segment' };
      }
    }
    const preferred: GatewayHop[] = [];
    const others: GatewayHop[] = [];
    for (const g of this.t.gateways) {
      if (g.prefixes && (digits === undefined || !g.prefixes.matches(digits))) continue;
      const hop: GatewayHop = { gateway: g.id, host: g.host, port: g.port, transport: g.transport, dial: g.dialPrefix + formatNumber(n, g.numberFormat) };
      const cid = this.externalCallerId;
      if (cid !== undefined) hop.callerId = formatNumber(cid, g.numberFormat);
      (carrier !== undefined && g.carriers.has(carrier.id) ? preferred : others).push(hop);
    }
    const target: ExternalTarget = { kind: 'external', number: n.e164 ?? n.national, timeoutMs, gateways: preferred.concat(others) };
    if (forExtension !== undefined) target.forExtension = forExtension;
    if (carrier) target.carrier = carrier;
    return target;
  }

  private refuse(status: number, why: string, outcome: Outcome): void {
    // The outcome describes how the call starts; a refusal deep in a failover branch is in the trace and the step.
    if (this.steps.length === 0) this.outcome = outcome;
    this.steps.push({ kind: 'reject', status, reason: reasonPhrase(status), source: { builtin: why } });
  }

  private refuseBlacklisted(): void {
    const bl = this.blacklist();
    const why = bl.listed ? `caller blacklisted (${bl.list} ${bl.match} ${bl.entry})` : 'caller blacklisted';
    this.refuse(this.t.blacklist.status, why, 'blacklisted');
  }

  private setCalled(n: PhoneNumber): PhoneNumber {
    this.calledNumber = n;
    this.expl.called.number = n.e164 ?? n.national;
    this.expl.called.class = n.class;
    return n;
  }

  private finish(): Evaluation {
    const e = this.expl;
    e.outcome = this.outcome;
    if (this.outcome !== 'routed') e.code = OUTCOME_CODES[this.outcome];
    const bl = this.blacklistMemo;
    if (bl?.listed) e.caller.blacklisted = { list: bl.list, match: bl.match, entry: bl.entry };
    if (this.regionMemo) e.caller.region = this.regionMemo.text;
    e.summary = this.summary();
    return { plan: { tenant: this.t.id, steps: this.steps, caller: this.presented }, explanation: e };
  }

  private summary(): string {
    const first = this.steps[0];
    const head = first === undefined ? 'nothing to do' : describeStep(first);
    const path = this.traces.map((r) => (r.matchedRule !== undefined ? `route "${r.route}" rule "${r.matchedRule}"` : `route "${r.route}" (no rule matched)`)).join(' → ');
    const why = first?.source.builtin !== undefined && first.kind === 'reject' ? `: ${first.source.builtin}` : '';
    const via = this.expl.called.match ? `${this.expl.called.match.entry}` : `called ${this.f.called}`;
    return `${this.outcome}: ${via}${path ? ` → ${path}` : ''} → ${head}${why}`;
  }

  // ---- ConditionInput (lazy facts, computed at most once per evaluation) ---

  scheduleOpen(id: string): boolean {
    this.scheduleMemo ??= new Map();
    let open = this.scheduleMemo.get(id);
    if (open === undefined) {
      const s = this.t.schedules.get(id);
      open = s !== undefined && scheduleStatus(s, this.f.time).open;
      this.scheduleMemo.set(id, open);
    }
    return open;
  }

  scheduleStatusText(id: string): string {
    const s = this.t.schedules.get(id);
    return s ? describeScheduleStatus(s, scheduleStatus(s, this.f.time)) : `schedule "${id}" does not exist`;
  }

  region(): RegionInfo {
    if (this.regionMemo) return this.regionMemo;
    const digits = this.callerNumber?.e164?.slice(1);
    const o = digits !== undefined ? this.t.regionOverrides.longest(digits) : undefined;
    let info: RegionInfo;
    if (o) {
      const { province, city, prefix } = o.value;
      info = { provinceKey: regionKey(province), cityKey: city !== undefined ? regionKey(city) : undefined, text: `${province}${city !== undefined ? `/${city}` : ''} (tenant override ${prefix})` };
    } else if (this.f.callerRegion?.province !== undefined && this.f.callerRegion.province !== '') {
      const { province, city } = this.f.callerRegion;
      info = { provinceKey: regionKey(province), cityKey: city !== undefined && city !== '' ? regionKey(city) : undefined, text: `${province}${city ? `/${city}` : ''}` };
    } else {
      info = { provinceKey: undefined, cityKey: undefined, text: 'unknown' };
    }
    this.regionMemo = info;
    return info;
  }

  callerForms(): { national: string; e164: string | undefined } | undefined {
    if (this.callerExt) return { national: this.callerExt.number, e164: undefined };
    return this.callerNumber;
  }

  calledForms(): { national: string; e164: string | undefined } | undefined {
    return this.calledNumber;
  }

  ivrDigits(): string | undefined {
    return this.f.ivr?.digits;
  }

  /** Only calls from carrier trunks are screened; extensions are our own authenticated users. */
  private blacklist(): Blacklisting {
    if (this.blacklistMemo) return this.blacklistMemo;
    let r: Blacklisting = NOT_LISTED;
    if (this.trunk) {
      const n = this.callerNumber;
      if (!n) {
        if (this.t.blacklist.anonymous) r = { listed: true, list: 'tenant', match: 'anonymous', entry: this.f.caller === undefined || this.f.caller === '' ? 'withheld number' : `unusable number "${this.f.caller}"` };
      } else {
        const key = numberKey(n);
        const digits = n.e164?.slice(1);
        const lists: Array<['global' | 'tenant', { exact: ReadonlySet<string>; prefixes: { longest(k: string): { value: string } | undefined } }]> =
          [['global', this.global.blacklist], ['tenant', this.t.blacklist]];
        for (const [list, bl] of lists) {
          if (bl.exact.has(key)) { r = { listed: true, list, match: 'exact', entry: n.e164 ?? n.national }; break; }
          const p = digits !== undefined ? bl.prefixes.longest(digits) : undefined;
          if (p) { r = { listed: true, list, match: 'prefix', entry: p.value }; break; }
        }
      }
    }
    this.blacklistMemo = r;
    return r;
  }
}

function allFailures(next: NextStep): Record<FailureKind, NextStep> {
  return { 'busy': next, 'no-answer': next, 'unreachable': next, 'rejected': next, 'declined': next };
}

function mapFailures(onFail: Readonly<Record<FailureKind, number | 'stop'>>, resolve: (n: number | 'stop') => NextStep): Record<FailureKind, NextStep> {
  const out = allFailures('stop');
  for (const k of FAILURE_KINDS) out[k] = resolve(onFail[k]);
  return out;
}

function pushGroup(groups: PlanRingGroup[], targets: PlanTarget[]): void {
  if (targets.length === 0) return;
  let timeoutMs = 0;
  for (const t of targets) if (t.timeoutMs > timeoutMs) timeoutMs = t.timeoutMs;
  groups.push({ targets, timeoutMs });
}

function describeStep(s: PlanStep): string {
  switch (s.kind) {
    case 'ring': {
      const n = s.groups.reduce((acc, g) => acc + g.targets.length, 0);
      return `ring ${n} target(s) ${s.strategy}${s.counter && s.counter.value === undefined ? ' (round-robin counter pending)' : ''}`;
    }
    case 'forward': return `forward to ${s.target.number}`;
    case 'ivr': return `IVR menu "${s.menu}"`;
    case 'announce': return `announce "${s.prompt}"${s.then === 'hangup' ? ' and hang up' : ''}`;
    case 'reject': return `reject ${s.status} ${s.reason}`;
    case 'voicemail': return `voicemail box "${s.box}"`;
  }
}
