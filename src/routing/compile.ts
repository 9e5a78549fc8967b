/**
 * Compiles a tenant document once (on load or change) into indexes that make
 * one evaluation a handful of map lookups and a short walk over the route's
 * rules:
 * - exact numbers: Map by E.164 digits (`numberKey`); blocks (prefixes and
 *   ranges cut into aligned prefix blocks): a digit trie, longest match;
 * - extensions, groups, menus, schedules, trunks: Maps by id;
 * - short-number plans: code → member per plan, and member → (plan, code)
 *   by extension and by number, so "is the caller a member" is one lookup;
 * - blacklists: Set of exact keys + prefix trie;
 * - rule conditions: closures over precompiled data (regexes, region keys,
 *   schedule windows), rule action chains with `next` already resolved and
 *   unreachable actions marked.
 *
 * The result is treated as immutable; shared objects are frozen.
 */
import { RoutingError } from './errors.js';
import { DigitTrie, rangeToBlocks } from './digit-trie.js';
import type {
  Action, Conditions, Extension, GlobalDocument, NextOnFail, OnFail, RingStrategy, RingTargetRef, TenantDocument,
} from './model.js';
import { normalizeNumber, normalizePrefix, numberKey, parseNumber, type ParseOptions, type PhoneNumber } from './numbering.js';
import { FAILURE_KINDS, type FailureKind } from './plan.js';
import { regionKey } from './region.js';
import { compileSchedule, DEFAULT_TIME_ZONE, type CompiledSchedule } from './schedule.js';
import { validateGlobal, validateTenant } from './validate.js';

export const DEFAULT_TARGET_TIMEOUT_MS = 20_000;
export const DEFAULT_BLACKLIST_STATUS = 603;

export interface NumberBinding {
  readonly route: string;
  /** The entry as written and its index, for explanations: `number 4008123456 (/numbers/0)`. */
  readonly entry: string;
}

export interface CompiledExtension {
  readonly number: string;
  readonly name: string | undefined;
  readonly timeoutMs: number;
  readonly alsoRing: readonly PhoneNumber[];
  readonly alsoRingMode: 'together' | 'after';
  readonly outboundCallerId: PhoneNumber | undefined;
  readonly voicemail: string | undefined;
  readonly route: string | undefined;
}

export type TargetUnit =
  | { readonly kind: 'extension'; readonly extension: CompiledExtension; readonly timeoutMs: number; readonly weight: number }
  | { readonly kind: 'external'; readonly number: PhoneNumber; readonly timeoutMs: number; readonly weight: number };

export interface RingSpec {
  readonly strategy: RingStrategy;
  readonly units: readonly TargetUnit[];
  readonly weights: readonly number[];
  readonly overallTimeoutMs: number | undefined;
  readonly stopOnDecline: boolean;
  /** Round-robin only: the shared counter, `rr:<tenant>:group:<id>` or `rr:<tenant>:route:<route>:<rule>:<action>`. */
  readonly counterKey: string | undefined;
}

export interface CompiledGroup {
  readonly id: string;
  readonly ring: RingSpec;
}

/** `next` resolved: an action index of the same chain, or stop. */
export type ChainNext = number | 'stop';

export type CompiledAction =
  | { readonly kind: 'ring'; readonly ring: RingSpec; readonly onFail: Readonly<Record<FailureKind, ChainNext>> }
  | { readonly kind: 'ivr'; readonly menu: CompiledMenu }
  | { readonly kind: 'announce'; readonly prompt: string; readonly then: 'hangup' | number }
  | { readonly kind: 'reject'; readonly status: number; readonly reason: string | undefined }
  | { readonly kind: 'forward-number'; readonly number: PhoneNumber; readonly timeoutMs: number; readonly onFail: Readonly<Record<FailureKind, ChainNext>> }
  | { readonly kind: 'forward-route'; readonly route: string }
  | { readonly kind: 'voicemail'; readonly box: string };

export type ConditionName = 'schedule' | 'callerRegion' | 'callerNumber' | 'calledNumber' | 'ivrDigits';

/** What a condition needs from one evaluation; implemented by the engine's context. */
export interface ConditionInput {
  scheduleStatusText(id: string): string;
  scheduleOpen(id: string): boolean;
  region(): { provinceKey: string | undefined; cityKey: string | undefined; text: string };
  callerForms(): { national: string; e164: string | undefined } | undefined;
  calledForms(): { national: string; e164: string | undefined } | undefined;
  ivrDigits(): string | undefined;
}

export interface CompiledCondition {
  readonly name: ConditionName;
  test(input: ConditionInput): boolean;
  describe(input: ConditionInput, ok: boolean): string;
}

export interface CompiledRule {
  readonly id: string;
  readonly conditions: readonly CompiledCondition[];
  /** The rule's callerBlacklisted condition (false when absent). */
  readonly forBlacklisted: boolean;
  readonly actions: readonly CompiledAction[];
  /** Whether action i can run at all (reachable from action 0 through next/onFail/then). */
  readonly reachable: readonly boolean[];
}

export interface CompiledRoute {
  readonly id: string;
  readonly rules: readonly CompiledRule[];
}

export interface CompiledMenu {
  readonly id: string;
  readonly prompt: string;
  readonly maxDigits: number;
  readonly digitTimeoutMs: number;
  readonly retries: number;
  readonly extensionDialling: boolean;
  readonly route: string;
}

export interface ShortMember {
  readonly plan: string;
  readonly code: string;
  readonly name: string | undefined;
  readonly extension: string | undefined;
  readonly number: PhoneNumber | undefined;
}

export interface CompiledShortPlans {
  /** plan id → code → member */
  readonly codes: ReadonlyMap<string, ReadonlyMap<string, ShortMember>>;
  /** code → plans defining it (to refuse non-members). */
  readonly plansByCode: ReadonlyMap<string, readonly string[]>;
  /** extension → its memberships, in plan order */
  readonly byExtension: ReadonlyMap<string, readonly ShortMember[]>;
  /** numberKey → memberships of an external member number */
  readonly byNumber: ReadonlyMap<string, readonly ShortMember[]>;
}

export interface CompiledBlacklist {
  readonly exact: ReadonlySet<string>;
  readonly prefixes: DigitTrie<string>;
}

export interface CompiledTrunk {
  readonly id: string;
  readonly parseOpts: ParseOptions;
  /** undefined: the trunk may deliver any tenant number. */
  readonly allowed: { readonly prefixes: DigitTrie<string>; readonly short: ReadonlySet<string> } | undefined;
}

export interface CompiledGateway {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly transport: 'udp' | 'tcp' | 'tls';
  readonly priority: number;
  readonly order: number;
  /** undefined: reaches every destination. */
  readonly prefixes: DigitTrie<true> | undefined;
  readonly carriers: ReadonlySet<string>;
  readonly numberFormat: 'e164' | 'national' | 'digits';
  readonly dialPrefix: string;
}

export interface CompiledTenant {
  readonly id: string;
  readonly timeZone: string;
  readonly parseOpts: ParseOptions;
  readonly targetTimeoutMs: number;
  readonly overallTimeoutMs: number | undefined;
  readonly exactNumbers: ReadonlyMap<string, NumberBinding>;
  readonly numberBlocks: DigitTrie<NumberBinding>;
  readonly extensions: ReadonlyMap<string, CompiledExtension>;
  readonly groups: ReadonlyMap<string, CompiledGroup>;
  readonly shortPlans: CompiledShortPlans;
  readonly schedules: ReadonlyMap<string, CompiledSchedule>;
  readonly blacklist: CompiledBlacklist & { readonly anonymous: boolean; readonly status: number };
  readonly regionOverrides: DigitTrie<{ readonly province: string; readonly city: string | undefined; readonly prefix: string }>;
  readonly trunks: ReadonlyMap<string, CompiledTrunk>;
  /** By priority, then document order. */
  readonly gateways: readonly CompiledGateway[];
  readonly ivrMenus: ReadonlyMap<string, CompiledMenu>;
  readonly routes: ReadonlyMap<string, CompiledRoute>;
  readonly outboundCallerId: PhoneNumber | undefined;
  /** numberKey of a ported mobile → current carrier, as this tenant knows it (before the global table). */
  readonly ported: ReadonlyMap<string, string>;
  readonly stats: { readonly numbers: number; readonly numberBlocks: number; readonly routes: number; readonly rules: number; readonly extensions: number };
}

export interface CompiledGlobal {
  readonly blacklist: CompiledBlacklist;
  /** numberKey of a ported mobile → current carrier */
  readonly ported: ReadonlyMap<string, string>;
  /** mobile segment → original carrier */
  readonly segments: DigitTrie<string>;
}

export const EMPTY_GLOBAL: CompiledGlobal = Object.freeze({
  blacklist: Object.freeze({ exact: new Set<string>(), prefixes: new DigitTrie<string>() }),
  ported: new Map<string, string>(),
  segments: new DigitTrie<string>(),
});

/** Validates (schema + references) and compiles; throws RoutingError DP_ROUTE_INVALID_TENANT listing every issue. */
export function compileTenant(doc: unknown): CompiledTenant {
  const v = validateTenant(doc);
  if (!v.ok) {
    const first = v.issues[0];
    throw new RoutingError('DP_ROUTE_INVALID_TENANT', `${v.issues.length} issue(s), first: ${first ? `${first.path || '/'}: ${first.message}` : '?'}`, v.issues);
  }
  return new TenantCompiler(v.value).compile();
}

export function compileGlobal(doc: unknown): CompiledGlobal {
  const v = validateGlobal(doc);
  if (!v.ok) {
    const first = v.issues[0];
    throw new RoutingError('DP_ROUTE_INVALID_GLOBAL', `${v.issues.length} issue(s), first: ${first ? `${first.path || '/'}: ${first.message}` : '?'}`, v.issues);
  }
  const g: GlobalDocument = v.value;
  const ported = new Map<string, string>();
  for (const p of g.carriers?.ported ?? []) ported.set(numberKey(normalizeNumber(p.number)), p.carrier);
  const segments = new DigitTrie<string>();
  for (const s of g.carriers?.segments ?? []) segments.addPrefix(normalizePrefix(s.prefix), s.carrier);
  return { blacklist: compileBlacklist(g.blacklist?.numbers ?? [], g.blacklist?.prefixes ?? [], {}), ported, segments };
}

function compileBlacklist(numbers: readonly string[], prefixes: readonly string[], parseOpts: ParseOptions): CompiledBlacklist {
  const exact = new Set<string>();
  for (const n of numbers) exact.add(numberKey(normalizeNumber(n, parseOpts)));
  const trie = new DigitTrie<string>();
  for (const p of prefixes) trie.addPrefix(normalizePrefix(p), p);
  return { exact, prefixes: trie };
}

class TenantCompiler {
  private readonly parseOpts: ParseOptions;
  private readonly targetTimeoutMs: number;
  private readonly extensions = new Map<string, CompiledExtension>();
  private readonly menus = new Map<string, CompiledMenu>();
  private rules = 0;

  constructor(private readonly doc: TenantDocument) {
    this.parseOpts = doc.areaCode !== undefined ? { defaultAreaCode: doc.areaCode } : {};
    this.targetTimeoutMs = doc.defaults?.targetTimeoutMs ?? DEFAULT_TARGET_TIMEOUT_MS;
  }

  compile(): CompiledTenant {
    const d = this.doc;
    const timeZone = d.timeZone ?? DEFAULT_TIME_ZONE;
    for (const e of d.extensions ?? []) this.extensions.set(e.number, this.extension(e));
    for (const m of d.ivrMenus ?? []) {
      this.menus.set(m.id, Object.freeze({
        id: m.id, prompt: m.prompt, maxDigits: m.maxDigits ?? 1, digitTimeoutMs: m.digitTimeoutMs ?? 5000,
        retries: m.retries ?? 2, extensionDialling: m.extensionDialling ?? false, route: m.route,
      }));
    }
    const groups = new Map<string, CompiledGroup>();
    for (const g of d.groups ?? []) {
      groups.set(g.id, {
        id: g.id,
        ring: this.ringSpec(g.members, g.strategy, g.memberTimeoutMs, g.overallTimeoutMs, g.onDecline, `rr:${d.id}:group:${g.id}`),
      });
    }
    const schedules = new Map<string, CompiledSchedule>();
    for (const s of d.schedules ?? []) schedules.set(s.id, compileSchedule(s, timeZone));

    const routes = new Map<string, CompiledRoute>();
    for (const r of d.routes ?? []) {
      routes.set(r.id, { id: r.id, rules: r.rules.map((rule) => this.rule(r.id, rule.id, rule.when, rule.actions, groups)) });
    }

    const { exact, blocks } = this.numbers();
    const bl = d.blacklist;
    const regionOverrides = new DigitTrie<{ province: string; city: string | undefined; prefix: string }>();
    for (const o of d.regionOverrides ?? []) regionOverrides.addPrefix(normalizePrefix(o.prefix), Object.freeze({ province: o.province, city: o.city, prefix: o.prefix }));

    return {
      id: d.id,
      timeZone,
      parseOpts: this.parseOpts,
      targetTimeoutMs: this.targetTimeoutMs,
      overallTimeoutMs: d.defaults?.overallTimeoutMs,
      exactNumbers: exact,
      numberBlocks: blocks,
      extensions: this.extensions,
      groups,
      shortPlans: this.shortPlans(),
      schedules,
      blacklist: {
        ...compileBlacklist(bl?.numbers ?? [], bl?.prefixes ?? [], this.parseOpts),
        anonymous: bl?.anonymous ?? false,
        status: bl?.status ?? DEFAULT_BLACKLIST_STATUS,
      },
      regionOverrides,
      trunks: new Map((d.inboundTrunks ?? []).map((t) => [t.id, this.trunk(t.id, t.numbers, t.areaCode)])),
      gateways: this.gateways(),
      ivrMenus: this.menus,
      routes,
      outboundCallerId: d.outboundCallerId !== undefined ? normalizeNumber(d.outboundCallerId, this.parseOpts) : undefined,
      ported: new Map((d.ported ?? []).map((p) => [numberKey(normalizeNumber(p.number, this.parseOpts)), p.carrier])),
      stats: { numbers: exact.size, numberBlocks: blocks.size, routes: routes.size, rules: this.rules, extensions: this.extensions.size },
    };
  }

  private numbers(): { exact: Map<string, NumberBinding>; blocks: DigitTrie<NumberBinding> } {
    const exact = new Map<string, NumberBinding>();
    const blocks = new DigitTrie<NumberBinding>();
    // Ranges by span, widest first: a narrower nested range then overwrites
    // the blocks it shares with the wider one (references.ts refuses
    // identical and partially overlapping ranges).
    const ranges: Array<{ from: string; to: string; binding: NumberBinding; span: number }> = [];
    (this.doc.numbers ?? []).forEach((n, i) => {
      if (n.number !== undefined) {
        const p = normalizeNumber(n.number, this.parseOpts);
        exact.set(numberKey(p), Object.freeze({ route: n.route, entry: `number ${n.number} (/numbers/${i})` }));
      } else if (n.prefix !== undefined) {
        blocks.addPrefix(normalizePrefix(n.prefix), Object.freeze({ route: n.route, entry: `prefix ${n.prefix} (/numbers/${i})` }));
      } else if (n.range !== undefined) {
        const from = (normalizeNumber(n.range.from, this.parseOpts).e164 ?? '').slice(1);
        const to = (normalizeNumber(n.range.to, this.parseOpts).e164 ?? '').slice(1);
        ranges.push({ from, to, span: Number(to) - Number(from), binding: Object.freeze({ route: n.route, entry: `range ${n.range.from}..${n.range.to} (/numbers/${i})` }) });
      }
    });
    ranges.sort((a, b) => b.span - a.span);
    for (const r of ranges) for (const block of rangeToBlocks(r.from, r.to)) blocks.setBlock(block, r.from.length, r.binding);
    return { exact, blocks };
  }

  private extension(e: Extension): CompiledExtension {
    return Object.freeze({
      number: e.number,
      name: e.name,
      timeoutMs: e.ringTimeoutMs ?? this.targetTimeoutMs,
      alsoRing: Object.freeze((e.alsoRing?.numbers ?? []).map((n) => normalizeNumber(n, this.parseOpts))),
      alsoRingMode: e.alsoRing?.mode ?? 'together',
      outboundCallerId: e.outboundCallerId !== undefined ? normalizeNumber(e.outboundCallerId, this.parseOpts) : undefined,
      voicemail: e.voicemail,
      route: e.route,
    });
  }

  private ringSpec(
    targets: readonly RingTargetRef[],
    strategy: RingStrategy,
    targetTimeoutMs: number | undefined,
    overallTimeoutMs: number | undefined,
    onDecline: 'stop' | 'continue' | undefined,
    counterKey: string,
  ): RingSpec {
    const units: TargetUnit[] = targets.map((t) => {
      const timeoutMs = t.timeoutMs ?? targetTimeoutMs;
      const weight = t.weight ?? 1;
      if (t.extension !== undefined) {
        const ext = this.extensions.get(t.extension);
        if (!ext) throw new RoutingError('DP_ROUTE_REFERENCE', `extension ${t.extension} does not exist`);
        return Object.freeze({ kind: 'extension' as const, extension: ext, timeoutMs: timeoutMs ?? ext.timeoutMs, weight });
      }
      return Object.freeze({ kind: 'external' as const, number: normalizeNumber(t.number ?? '', this.parseOpts), timeoutMs: timeoutMs ?? this.targetTimeoutMs, weight });
    });
    return Object.freeze({
      strategy,
      units: Object.freeze(units),
      weights: Object.freeze(units.map((u) => u.weight)),
      overallTimeoutMs: overallTimeoutMs ?? this.doc.defaults?.overallTimeoutMs,
      stopOnDecline: (onDecline ?? 'stop') === 'stop',
      counterKey: strategy === 'round-robin' ? counterKey : undefined,
    });
  }

  private rule(routeId: string, ruleId: string, when: Conditions | undefined, actions: readonly Action[], groups: ReadonlyMap<string, CompiledGroup>): CompiledRule {
    this.rules++;
    const count = actions.length;
    const compiled: CompiledAction[] = actions.map((a, i) => this.action(a, i, count, `rr:${this.doc.id}:route:${routeId}:${ruleId}:${i}`, groups));
    return Object.freeze({
      id: ruleId,
      conditions: Object.freeze(compileConditions(when)),
      forBlacklisted: when?.callerBlacklisted ?? false,
      actions: Object.freeze(compiled),
      reachable: Object.freeze(reachability(compiled)),
    });
  }

  private action(a: Action, index: number, count: number, counterKey: string, groups: ReadonlyMap<string, CompiledGroup>): CompiledAction {
    const onDecline = 'onDecline' in a ? a.onDecline : undefined;
    const chain = (onFail: OnFail | undefined): Record<FailureKind, ChainNext> => resolveOnFail(onFail, onDecline, index, count);
    switch (a.kind) {
      case 'ring':
        return Object.freeze({
          kind: 'ring',
          ring: this.ringSpec(a.targets, a.strategy ?? 'simultaneous', a.targetTimeoutMs, a.overallTimeoutMs, a.onDecline, counterKey),
          onFail: chain(a.onFail),
        });
      case 'ringGroup': {
        const g = groups.get(a.group);
        if (!g) throw new RoutingError('DP_ROUTE_REFERENCE', `group "${a.group}" does not exist`);
        const ring: RingSpec = a.overallTimeoutMs !== undefined || a.onDecline !== undefined
          ? Object.freeze({ ...g.ring, overallTimeoutMs: a.overallTimeoutMs ?? g.ring.overallTimeoutMs, stopOnDecline: a.onDecline !== undefined ? a.onDecline === 'stop' : g.ring.stopOnDecline })
          : g.ring;
        return Object.freeze({ kind: 'ring', ring, onFail: resolveOnFail(a.onFail, a.onDecline ?? (g.ring.stopOnDecline ? 'stop' : 'continue'), index, count) });
      }
      case 'ivr': {
        const menu = this.menus.get(a.menu);
        if (!menu) throw new RoutingError('DP_ROUTE_REFERENCE', `IVR menu "${a.menu}" does not exist`);
        return Object.freeze({ kind: 'ivr', menu });
      }
      case 'announce':
        return Object.freeze({ kind: 'announce', prompt: a.prompt, then: a.then === 'next' && index + 1 < count ? index + 1 : 'hangup' });
      case 'reject':
        return Object.freeze({ kind: 'reject', status: a.status, reason: a.reason });
      case 'forward':
        if (a.route !== undefined) return Object.freeze({ kind: 'forward-route', route: a.route });
        return Object.freeze({
          kind: 'forward-number',
          number: normalizeNumber(a.number ?? '', this.parseOpts),
          timeoutMs: a.timeoutMs ?? this.targetTimeoutMs,
          onFail: chain(a.onFail),
        });
      case 'voicemail':
        return Object.freeze({ kind: 'voicemail', box: a.box });
    }
  }

  private shortPlans(): CompiledShortPlans {
    const codes = new Map<string, Map<string, ShortMember>>();
    const plansByCode = new Map<string, string[]>();
    const byExtension = new Map<string, ShortMember[]>();
    const byNumber = new Map<string, ShortMember[]>();
    for (const p of this.doc.shortNumberPlans ?? []) {
      const planCodes = new Map<string, ShortMember>();
      codes.set(p.id, planCodes);
      for (const m of p.members) {
        const member: ShortMember = Object.freeze({
          plan: p.id, code: m.code, name: m.name,
          extension: m.extension,
          number: m.number !== undefined ? normalizeNumber(m.number, this.parseOpts) : undefined,
        });
        planCodes.set(m.code, member);
        const plans = plansByCode.get(m.code) ?? [];
        if (!plans.includes(p.id)) plans.push(p.id);
        plansByCode.set(m.code, plans);
        if (member.extension !== undefined) pushTo(byExtension, member.extension, member);
        if (member.number !== undefined) pushTo(byNumber, numberKey(member.number), member);
      }
    }
    return { codes, plansByCode, byExtension, byNumber };
  }

  private trunk(id: string, numbers: readonly string[] | undefined, areaCode: string | undefined): CompiledTrunk {
    const area = areaCode ?? this.doc.areaCode;
    const parseOpts: ParseOptions = area !== undefined ? { defaultAreaCode: area } : {};
    if (numbers === undefined) return { id, parseOpts, allowed: undefined };
    const prefixes = new DigitTrie<string>();
    const short = new Set<string>();
    for (const n of numbers) {
      const r = parseNumber(n, parseOpts);
      if (r.ok && r.number.class === 'short-service') short.add(numberKey(r.number));
      else prefixes.addPrefix(normalizePrefix(n), n);
    }
    return { id, parseOpts, allowed: { prefixes, short } };
  }

  private gateways(): CompiledGateway[] {
    const list = (this.doc.outboundGateways ?? []).map((g, order): CompiledGateway => {
      let prefixes: DigitTrie<true> | undefined;
      if (g.prefixes !== undefined) {
        prefixes = new DigitTrie<true>();
        for (const p of g.prefixes) prefixes.addPrefix(normalizePrefix(p), true);
      }
      return Object.freeze({
        id: g.id, host: g.host, port: g.port ?? 5060, transport: g.transport ?? 'udp', priority: g.priority ?? 100, order,
        prefixes, carriers: new Set(g.carriers ?? []), numberFormat: g.numberFormat ?? 'national', dialPrefix: g.dialPrefix ?? '',
      });
    });
    return list.sort((a, b) => a.priority - b.priority || a.order - b.order);
  }
}

function pushTo<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

/**
 * onFail with defaults: every failure moves to the next action; a decline
 * stops the call unless the action says `onDecline: continue`, in which
 * case it is treated like busy. `next` after the last action is stop.
 */
function resolveOnFail(onFail: OnFail | undefined, onDecline: 'stop' | 'continue' | undefined, index: number, count: number): Record<FailureKind, ChainNext> {
  const resolve = (n: NextOnFail | undefined): ChainNext => {
    const v = n ?? 'next';
    if (v === 'stop') return 'stop';
    if (v === 'next') return index + 1 < count ? index + 1 : 'stop';
    return v;
  };
  const busy = resolve(onFail?.busy);
  return {
    'busy': busy,
    'no-answer': resolve(onFail?.noAnswer),
    'unreachable': resolve(onFail?.unreachable),
    'rejected': resolve(onFail?.rejected),
    'declined': onFail?.declined !== undefined ? resolve(onFail.declined) : (onDecline ?? 'stop') === 'stop' ? 'stop' : busy,
  };
}

/** Which actions can run: from action 0 along onFail / announce-then edges. */
function reachability(actions: readonly CompiledAction[]): boolean[] {
  const seen = actions.map(() => false);
  const visit = (i: number): void => {
    if (i >= actions.length || seen[i]) return;
    seen[i] = true;
    const a = actions[i];
    if (!a) return;
    if (a.kind === 'ring' || a.kind === 'forward-number') {
      for (const k of FAILURE_KINDS) {
        const n = a.onFail[k];
        if (n !== 'stop') visit(n);
      }
    } else if (a.kind === 'announce' && a.then !== 'hangup') visit(a.then);
  };
  visit(0);
  return seen;
}

/** `13812345678`-style patterns: digits, X = any digit, trailing * = anything; + = match the E.164 form. */
export function compileNumberPattern(patterns: readonly string[]): { national: RegExp | undefined; e164: RegExp | undefined } {
  const national: string[] = [];
  const e164: string[] = [];
  for (const p of patterns) {
    const plus = p.startsWith('+');
    const body = (plus ? p.slice(1) : p).replace(/X/g, '\\d').replace(/\*$/, '\\d*');
    (plus ? e164 : national).push(plus ? `\\+${body}` : body);
  }
  return {
    national: national.length > 0 ? new RegExp(`^(?:${national.join('|')})$`) : undefined,
    e164: e164.length > 0 ? new RegExp(`^(?:${e164.join('|')})$`) : undefined,
  };
}

function compileConditions(when: Conditions | undefined): CompiledCondition[] {
  if (!when) return [];
  const out: CompiledCondition[] = [];
  const s = when.schedule;
  if (s) {
    out.push({
      name: 'schedule',
      test: (c) => c.scheduleOpen(s.id) === s.inside,
      describe: (c) => `rule wants ${s.inside ? 'inside' : 'outside'} schedule "${s.id}"; ${c.scheduleStatusText(s.id)}`,
    });
  }
  const r = when.callerRegion;
  if (r) {
    const wanted = r.in.map((x) => ({ province: regionKey(x.province), city: x.city !== undefined ? regionKey(x.city) : undefined }));
    const listText = r.in.map((x) => (x.city !== undefined ? `${x.province}/${x.city}` : x.province)).join(', ');
    const not = r.not ?? false;
    out.push({
      name: 'callerRegion',
      test: (c) => {
        const reg = c.region();
        const hit = reg.provinceKey !== undefined && wanted.some((w) => w.province === reg.provinceKey && (w.city === undefined || w.city === reg.cityKey));
        return hit !== not;
      },
      describe: (c, ok) => `caller region ${c.region().text} is ${ok !== not ? '' : 'not '}in [${listText}]${not ? ' (rule wants callers outside it)' : ''}`,
    });
  }
  for (const which of ['callerNumber', 'calledNumber'] as const) {
    const cond = when[which];
    if (!cond) continue;
    const re = compileNumberPattern(cond.patterns);
    const not = cond.not ?? false;
    const forms = (c: ConditionInput) => (which === 'callerNumber' ? c.callerForms() : c.calledForms());
    const label = which === 'callerNumber' ? 'caller' : 'called';
    out.push({
      name: which,
      test: (c) => {
        const f = forms(c);
        const hit = f !== undefined && ((re.national?.test(f.national) ?? false) || (f.e164 !== undefined && (re.e164?.test(f.e164) ?? false)));
        return hit !== not;
      },
      describe: (c, ok) => {
        const f = forms(c);
        const who = f ? `${label} ${f.national}` : `${label} number unknown`;
        return `${who} ${ok !== not ? 'matches' : 'does not match'} ${cond.patterns.join(' | ')}${not ? ' (rule wants no match)' : ''}`;
      },
    });
  }
  const digits = when.ivrDigits;
  if (digits) {
    const set = new Set(digits);
    out.push({
      name: 'ivrDigits',
      test: (c) => {
        const d = c.ivrDigits();
        return d !== undefined && set.has(d);
      },
      describe: (c, ok) => {
        const d = c.ivrDigits();
        return d === undefined ? 'no IVR digits collected' : `IVR digits "${d}" ${ok ? 'are' : 'are not'} one of ${digits.map((x) => `"${x}"`).join(', ')}`;
      },
    });
  }
  return out;
}
