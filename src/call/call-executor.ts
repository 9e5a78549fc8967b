/**
 * The call path: an initial SIP request becomes routing facts, the pure
 * engine (src/routing) turns them into a plan, and this module executes the
 * plan through the proxy core's forking API, step by step:
 *
 *   ring / forward  → a ForkPlan (registered contacts of extensions, external
 *                     numbers through the tenant's gateways); when it fails
 *                     the proxy asks `next`, which follows the step's onFail
 *                     for the failure kind (busy, no-answer, unreachable,
 *                     rejected, declined) or ends the call;
 *   reject          → the step's status;
 *   announce        → no media service yet: skipped to its `then` step, or
 *                     the call ends with 480 naming the announcement;
 *   ivr             → no media service yet: the menu behaves as if the
 *                     caller pressed nothing (its no-input branch);
 *   voicemail       → no media service yet: 480 naming the box.
 *
 * Who is calling decides the origin fact: a source address inside one of a
 * tenant's inbound trunks is a carrier call (the tenant is the one owning
 * the called number); anything else must prove an extension by digest
 * (RFC 3261 §22.3, 407 Proxy-Authenticate) in the realm of its domain.
 */
import { randomInt } from 'node:crypto';
import {
  applyCounter, evaluate, reasonPhrase,
  type ExternalTarget, type FailureKind, type GatewayHop, type Plan, type PlanStep, type RingStep, type ForwardStep,
  type RoutingFacts, type CallOrigin, type TenantDocument, type Explanation,
} from '../routing/index.js';
import type { Clock } from '../sip/clock.js';
import { LazyChildLogger, type Logger } from '../sip/logger.js';
import type { SipRequest } from '../sip/message/message.js';
import { parseNameAddr } from '../sip/message/name-addr.js';
import { parseUri, type SipUri } from '../sip/message/uri.js';
import type { BranchOutcome, ForkPlan, ForkTarget } from '../sip/proxy/fork-plan.js';
import type { ProxiedDialog } from '../sip/proxy/proxied-dialog.js';
import type { Continuation, ForkDecision, InitialRequestRouter, PlanFailure, RoutingDecision } from '../sip/proxy/proxy-core.js';
import type { DigestAuthenticator } from '../sip/registrar/digest.js';
import type { Binding, LocationService } from '../sip/registrar/location-service.js';
import { aorFor } from '../sip/registrar/registrar.js';
import type { Destination } from '../sip/transaction/types.js';
import type { CallRecord, CallTracker } from './call-tracker.js';
import { cidrContains, type Cidr } from './cidr.js';
import type { TenantIndex, TenantView } from './tenant-index.js';

export interface CounterSource {
  /** Atomic increment shared by every node (Redis INCR); 1 on first use. */
  incrCounter(key: string): Promise<number>;
}

export interface RegionLookup {
  lookup(number: string): { province?: string; city?: string } | undefined;
}

export interface CallExecutorOptions {
  index: TenantIndex;
  location: LocationService;
  /** The digest authenticator of a realm (one per realm: nonce counts live in it). */
  digestFor(realm: string): DigestAuthenticator;
  counters: CounterSource;
  region?: RegionLookup;
  /** Profile `trustedSources`: OPTIONS keep-alives from them are answered without a challenge. */
  trusted: readonly Cidr[];
  isLocalUri(uri: SipUri): boolean;
  flowAlive(connectionId: string): boolean;
  node: string;
  clock: Clock;
  log: Logger;
  /** Per-call seed for the random and weighted strategies (default: crypto random uint32). */
  seed?: () => number;
  /** Calls in progress: concurrent-call limits and call records (CDRs); absent = neither. */
  tracker?: CallTracker;
}

/** How long a caller refused for the tenant's call limit is asked to wait (RFC 3261 §20.33). */
const LIMIT_RETRY_AFTER_S = 10;

const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE, PRACK, MESSAGE, NOTIFY, SUBSCRIBE, REFER';
const UNAVAILABLE = { status: 480, reason: 'Temporarily Unavailable' } as const;
/** Plans never jump backwards (references.ts), so this only guards a bug against looping forever. */
const MAX_STEPS = 64;

function pong(): RoutingDecision {
  return { action: 'respond', status: 200, reason: 'OK', headers: [['Allow', ALLOW], ['Accept', 'application/sdp']] };
}

function respond(status: number, reason: string, headers?: Array<[string, string]>): RoutingDecision {
  return headers ? { action: 'respond', status, reason, headers } : { action: 'respond', status, reason };
}

/** The user part of a SIP/SIPS URI or the number of a tel URI, unescaped. */
function userOf(uri: SipUri): string | undefined {
  if (uri.isSip) return uri.userDecoded;
  if (uri.scheme === 'tel') return uri.user;
  return undefined;
}

/**
 * The calling number a carrier asserts: P-Asserted-Identity (RFC 3325 §9.1,
 * trusted from a trunk) first, else the From user. "anonymous" and friends
 * mean withheld.
 */
function callerNumberOf(req: SipRequest): string | undefined {
  let user: string | undefined;
  for (const v of req.getAll('p-asserted-identity')) {
    try {
      user = userOf(parseNameAddr(v.split(',')[0] ?? v, 'P-Asserted-Identity').uri);
    } catch {
      user = undefined;
    }
    if (user !== undefined) break;
  }
  user ??= userOf(req.from.uri);
  if (user === undefined || user === '' || /^(anonymous|unknown|restricted|unavailable)$/i.test(user)) return undefined;
  return user;
}

/** Quoted-string for a display name (RFC 3261 §25.1: escape `"` and `\`). */
function quoted(name: string): string {
  return `"${name.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** What the first evaluation of a call used; an IVR continuation re-evaluates with the same. */
interface CallBase {
  readonly origin: CallOrigin;
  readonly caller: string | undefined;
  readonly region: RoutingFacts['callerRegion'];
  readonly time: number;
  readonly seed: number;
}

/** State of one call while its plan runs. */
interface CallRun {
  readonly req: SipRequest;
  readonly tenant: TenantView;
  readonly realm: string;
  readonly base: CallBase;
  readonly plan: Plan;
  readonly log: Logger;
  /** The call's record while it is tracked (CDR). */
  readonly rec: CallRecord;
  steps: number;
}

type Respond = Extract<RoutingDecision, { action: 'respond' }>;
type StepResult = ForkDecision | Respond | undefined;

export function createCallExecutor(o: CallExecutorOptions): InitialRequestRouter {
  const seed = o.seed ?? (() => randomInt(0, 2 ** 32 - 1));
  // Round-robin without the shared store (Redis down): rotate locally and say so once per outage.
  const localCounters = new Map<string, number>();
  let counterOutage = false;
  // Extension number → SIP user name, per tenant document (they differ when sip.username is set).
  const usernames = new WeakMap<TenantDocument, Map<string, string>>();
  const usernameOf = (doc: TenantDocument, ext: string): string => {
    let m = usernames.get(doc);
    if (!m) {
      m = new Map((doc.extensions ?? []).map((e) => [e.number, e.sip.username ?? e.number]));
      usernames.set(doc, m);
    }
    return m.get(ext) ?? ext;
  };
  const isTrusted = (address: string): boolean => o.trusted.some((c) => cidrContains(c, address));

  async function counter(key: string, log: Logger): Promise<number> {
    try {
      const v = await o.counters.incrCounter(key);
      if (counterOutage) {
        counterOutage = false;
        log.info({ key }, 'round-robin counters reachable again');
      }
      return v;
    } catch (err) {
      if (!counterOutage) {
        counterOutage = true;
        log.warn({ err, key }, 'round-robin counters unreachable: rotating per node until the store returns');
      }
      const v = (localCounters.get(key) ?? 0) + 1;
      localCounters.set(key, v);
      return v;
    }
  }

  // ---- targets ---------------------------------------------------------------

  /**
   * Where to reach a binding: through its Path if any (RFC 3327), else over
   * the flow the REGISTER came in on — the NATed source address, or the
   * WebSocket/TCP connection (RFC 5626 §5.3 reuses the flow).
   */
  function bindingTarget(b: Binding, label: string, timeoutMs: number, headers: ForkTarget['headers']): ForkTarget | undefined {
    let uri;
    try {
      uri = parseUri(b.contact);
    } catch {
      return undefined;
    }
    const base: ForkTarget = { uri, label, timeoutMs, ...(headers ? { headers } : {}) };
    if (b.path.length > 0) return { ...base, path: b.path };
    const f = b.flow;
    let dest: Destination | undefined;
    if (f.transport === 'udp') dest = { transport: 'udp', address: f.address, port: f.port };
    else if (f.connectionId !== undefined) {
      if (f.node !== o.node || !o.flowAlive(f.connectionId)) {
        // A TCP flow can be re-opened towards the contact; a WebSocket one cannot.
        if (f.transport === 'ws' || f.transport === 'wss') return undefined;
        dest = { transport: 'tcp', address: f.address, port: f.port };
      } else {
        dest = { transport: f.transport === 'wss' ? 'ws' : (f.transport as Destination['transport']), address: f.address, port: f.port, connectionId: f.connectionId };
      }
    }
    return dest ? { ...base, dest } : base;
  }

  /** P-Asserted-Identity for legs to our own extensions: who the plan says the callee sees. */
  function internalIdentity(run: CallRun): ForkTarget['headers'] {
    const c = run.plan.caller;
    if (c.number === undefined) return [['Privacy', 'id']];
    const uri = `<sip:${c.number}@${run.realm}>`;
    return [['P-Asserted-Identity', c.name !== undefined ? `${quoted(c.name)} ${uri}` : uri]];
  }

  function gatewayTarget(run: CallRun, t: ExternalTarget, hop: GatewayHop, extra: ForkTarget['headers']): ForkTarget | undefined {
    if (hop.transport === 'tls') {
      run.log.warn({ gateway: hop.gateway }, 'gateway needs TLS, which this node does not speak yet: skipped');
      return undefined;
    }
    let uri: SipUri;
    try {
      uri = parseUri(`sip:${hop.dial}@${hop.host}:${hop.port}${hop.transport === 'tcp' ? ';transport=tcp' : ''}`);
    } catch {
      run.log.error({ gateway: hop.gateway, host: hop.host }, 'gateway address unusable');
      return undefined;
    }
    const headers: Array<[string, string]> = hop.callerId !== undefined
      ? [['P-Asserted-Identity', `<sip:${hop.callerId}@${hop.host}>`]]
      : [['Privacy', 'id']];
    for (const h of extra ?? []) headers.push([h[0], h[1]]);
    return { uri, label: `${t.number} via ${hop.gateway}`, timeoutMs: t.timeoutMs, headers };
  }

  /** Fork targets of one plan target: every registered contact of an extension, or the first usable gateway of a number. */
  async function forkTargets(run: CallRun, t: RingStep['groups'][number]['targets'][number], extra: ForkTarget['headers'], gateways: Map<ForkTarget, GatewayAttempt>): Promise<ForkTarget[]> {
    if (t.kind === 'extension') {
      const aor = aorFor(usernameOf(run.tenant.doc, t.extension), run.realm);
      const rec = await o.location.get(aor, o.clock.now());
      const out: ForkTarget[] = [];
      const headers = internalIdentity(run);
      for (const b of rec.bindings) {
        const ft = bindingTarget(b, t.extension, t.timeoutMs, headers);
        if (ft) out.push(ft);
      }
      return out;
    }
    return gatewayTargets(run, t, 0, extra, gateways);
  }

  function gatewayTargets(run: CallRun, t: ExternalTarget, from: number, extra: ForkTarget['headers'], gateways: Map<ForkTarget, GatewayAttempt>): ForkTarget[] {
    for (let i = from; i < t.gateways.length; i++) {
      const hop = t.gateways[i];
      const ft = hop && gatewayTarget(run, t, hop, extra);
      if (ft) {
        gateways.set(ft, { target: t, index: i, extra });
        return [ft];
      }
    }
    return [];
  }

  // ---- plan execution ----------------------------------------------------------

  /** Runs plan step `i`: a decision for the proxy, or a continuation of a running hunt. */
  async function runStep(run: CallRun, i: number | 'stop'): Promise<StepResult> {
    for (;;) {
      if (i === 'stop') return undefined;
      if (++run.steps > MAX_STEPS) {
        run.log.error({ step: i }, 'plan runs too many steps');
        return { action: 'respond', status: 500, reason: 'Routing plan too long' };
      }
      const step: PlanStep | undefined = run.plan.steps[i];
      if (!step) {
        run.log.error({ step: i, steps: run.plan.steps.length }, 'plan points past its end');
        return { action: 'respond', status: 500, reason: 'Routing plan broken' };
      }
      switch (step.kind) {
        case 'reject':
          return { action: 'respond', status: step.status, reason: step.reason };
        case 'announce':
          if (typeof step.then === 'number') {
            run.log.debug({ prompt: step.prompt }, 'announcement skipped: no media service');
            i = step.then;
            continue;
          }
          return { action: 'respond', status: UNAVAILABLE.status, reason: `Announcement ${step.prompt} (no media service)` };
        case 'voicemail':
          return { action: 'respond', status: UNAVAILABLE.status, reason: `Voicemail ${step.box} not available (no media service)` };
        case 'ivr': {
          // No media service yet: nobody can press a digit, so the menu takes its no-input branch.
          const sub = reevaluate(run, { menu: step.menu, digits: '' });
          if (!sub) return { action: 'respond', status: 500, reason: 'Routing failed' };
          return runStep(sub, 0);
        }
        case 'ring':
        case 'forward': {
          const d = await ringDecision(run, step);
          if (d) return d;
          // Nobody to ring at all (no registered device, no usable gateway): unreachable at once.
          run.log.debug({ step: i }, 'ring step has no reachable target');
          const n = step.onFail.unreachable;
          if (n === 'stop') return { action: 'respond', ...UNAVAILABLE };
          i = n;
          continue;
        }
      }
    }
  }

  function reevaluate(run: CallRun, ivr: { menu: string; digits: string }): CallRun | undefined {
    try {
      const ev = evaluate(run.tenant.compiled, factsOf(run.req, run.tenant, run.base, ivr), { global: o.index.global() });
      return { ...run, plan: ev.plan };
    } catch (err) {
      run.log.error({ err }, 'routing evaluation failed');
      return undefined;
    }
  }

  async function ringDecision(run: CallRun, step: RingStep | ForwardStep): Promise<ForkDecision | undefined> {
    let ring: RingStep;
    let extra: ForkTarget['headers'];
    if (step.kind === 'forward') {
      ring = {
        kind: 'ring', strategy: 'sequential', groups: [{ targets: [step.target], timeoutMs: step.target.timeoutMs }],
        stopOnDecline: true, onFail: step.onFail, source: step.source,
      };
      // RFC 5806: the number originally called, so the far end knows why the call came.
      extra = [['Diversion', `<sip:${userOf(run.req.uri) ?? ''}@${run.realm}>;reason=unconditional`]];
    } else {
      ring = step;
      if (step.counter && step.counter.value === undefined) ring = applyCounter(step, await counter(step.counter.key, run.log));
    }
    const sr: StepRun = {
      step, ring, extra, nextGroup: 0, best: undefined,
      deadline: ring.overallTimeoutMs !== undefined ? o.clock.now() + ring.overallTimeoutMs : undefined,
    };
    return groupFork(run, sr);
  }

  /**
   * The step's next group that has something to ring, as a fork; undefined
   * when none is left (or the step's overall time is up). Groups are resolved
   * one at a time, when the hunt reaches them: a hunt that the first target
   * answers looks up one extension's devices, not every target's (with Redis,
   * one round trip instead of one per target).
   */
  async function groupFork(run: CallRun, sr: StepRun): Promise<ForkDecision | undefined> {
    while (sr.nextGroup < sr.ring.groups.length) {
      const g = sr.ring.groups[sr.nextGroup++];
      if (!g) break;
      const gateways = new Map<ForkTarget, GatewayAttempt>();
      // The group's targets are looked up at once (pipelined with Redis).
      const targets = (await Promise.all(g.targets.map((t) => forkTargets(run, t, sr.extra, gateways)))).flat();
      if (targets.length === 0) continue;
      let overall: number | undefined;
      if (sr.deadline !== undefined) {
        overall = sr.deadline - o.clock.now();
        if (overall <= 0) return undefined;
      }
      return forkOf(run, sr, {
        groups: [{ targets, timeoutMs: g.timeoutMs }],
        exhausted: UNAVAILABLE,
        ...(overall !== undefined ? { overallTimeoutMs: overall } : {}),
        // Inside a group (ring-all), a 603 ends the group or not as the tenant configured.
        ...(sr.ring.stopOnDecline ? { stopOn: (st: number) => st === 603 } : { globalFailureEndsHunt: false }),
      }, gateways);
    }
    return undefined;
  }

  /**
   * A fork of one group of a step. When it fails the proxy asks `next`: the
   * same numbers through their next gateway if a gateway was unreachable,
   * else the step's next group, else the step has failed and its `onFail`
   * for the most telling failure of all its groups decides (§16.7's choice:
   * a busy phone earlier in the hunt says more than a later timeout).
   */
  function forkOf(run: CallRun, sr: StepRun, plan: ForkPlan, gateways: Map<ForkTarget, GatewayAttempt>): ForkDecision {
    const unreachable: GatewayAttempt[] = [];
    const callId = run.rec.callId;
    return {
      action: 'fork',
      plan,
      onOutcome: (out: BranchOutcome) => {
        const g = gateways.get(out.target);
        if (g && out.kind === 'unreachable') unreachable.push(g);
        const now = o.clock.now();
        o.tracker?.attempt(callId, {
          target: out.target.label ?? out.target.uri.toString(), kind: g ? 'external' : 'extension',
          startedAt: now - out.elapsedMs, endedAt: now, outcome: out.kind, status: out.status,
        });
      },
      // The dialog is kept so that an administrator can end the call (DELETE …/calls/{id}).
      ...(o.tracker ? { onAnswered: (d: ProxiedDialog | undefined) => o.tracker?.answeredDialog(callId, d) } : {}),
      next: async (failure: PlanFailure): Promise<Continuation> => {
        o.tracker?.failure(callId, failure.kind);
        // Gateway failover: the same numbers through their next gateway before the group counts as failed.
        if (failure.kind === 'unreachable' && unreachable.length > 0) {
          const retry = new Map<ForkTarget, GatewayAttempt>();
          const targets: ForkTarget[] = [];
          for (const g of unreachable) targets.push(...gatewayTargets(run, g.target, g.index + 1, g.extra, retry));
          if (targets.length > 0) {
            run.log.info({ numbers: [...retry.values()].map((g) => g.target.number) }, 'gateway unreachable: failing over to the next gateway');
            return forkOf(run, sr, { ...plan, groups: [{ targets, timeoutMs: Math.max(...targets.map((x) => x.timeoutMs ?? 0)) }] }, retry);
          }
        }
        if (sr.best === undefined || FAILURE_RANK[failure.kind] > FAILURE_RANK[sr.best.kind]) sr.best = failure;
        // A Decline ends the hunt when the tenant says so; anything else moves to the next group.
        if (!(failure.kind === 'declined' && sr.ring.stopOnDecline)) {
          const more = await groupFork(run, sr);
          if (more) return more;
        }
        const best = sr.best;
        const next = sr.step.onFail[best.kind as FailureKind] ?? 'stop';
        if (next !== 'stop') return runStep(run, next);
        // The caller hears the step's best failure, which an earlier group may hold.
        return best.status === failure.status ? undefined : { action: 'respond', status: best.status, reason: reasonPhrase(best.status) };
      },
    };
  }

  // ---- the router -------------------------------------------------------------

  return async (req: SipRequest): Promise<RoutingDecision> => {
    const src = req.source;
    const called = userOf(req.uri);
    const trunks = src ? o.index.trunksFrom(src.address) : [];
    const fromCarrier = trunks.length > 0;

    if (fromCarrier || (src !== undefined && isTrusted(src.address))) {
      // Keep-alive pings from carriers and trusted peers.
      if (req.method === 'OPTIONS') return pong();
      if (!fromCarrier) return respond(403, 'Source is trusted for keep-alives only, not on any inbound trunk');
      if (req.method !== 'INVITE') return respond(405, 'Method Not Allowed', [['Allow', 'INVITE, ACK, CANCEL, BYE, OPTIONS']]);
      if (called === undefined) return respond(404, 'Not Found');
      const match = o.index.trunkForCalled(trunks, called) ?? trunks[0];
      const tenant = match && o.index.get(match.tenant);
      if (!match || !tenant) return respond(404, 'Not Found');
      const caller = callerNumberOf(req);
      const region = caller !== undefined ? o.region?.lookup(caller) : undefined;
      return route(req, tenant, { kind: 'trunk', trunk: match.trunk }, caller, region);
    }

    // Everybody else is an extension and proves it (RFC 3261 §22.3: a proxy challenges with 407).
    const realm = o.index.realmForDomain(req.from.uri.isSip ? req.from.uri.hostAddress : undefined);
    const digest = o.digestFor(realm);
    const verdict = await digest.verify({
      method: req.method,
      requestUri: req.uri.toString(),
      authorization: req.getAll('proxy-authorization'),
      alsoAccept: (u) => uriIsLocal(u, o.isLocalUri),
    }, o.index);
    if (verdict.kind === 'malformed') return respond(400, verdict.reason);
    if (verdict.kind !== 'ok') {
      if (verdict.kind === 'failed') o.log.info({ user: verdict.username, why: verdict.internalReason, from: src?.address }, `${req.method} authentication failed`);
      const challenge = digest.challenge({ stale: verdict.kind === 'stale' });
      return respond(407, 'Proxy Authentication Required', challenge.map((v) => ['Proxy-Authenticate', v]));
    }
    // We consumed these credentials; the next hop must not see them.
    req.remove('proxy-authorization');
    const who = o.index.extensionFor(verdict.username, realm);
    const tenant = who && o.index.get(who.tenant);
    if (!who || !tenant) return respond(403, 'Forbidden');

    if (req.method !== 'INVITE') {
      // Out-of-dialog requests other than INVITE: to a fellow extension they go to its
      // devices (MESSAGE, OPTIONS, SUBSCRIBE...); an OPTIONS to anything else is a ping.
      const target = called !== undefined ? tenant.compiled.extensions.get(called) : undefined;
      if (!target) return req.method === 'OPTIONS' ? pong() : respond(404, 'Not Found');
      const rec = await o.location.get(aorFor(usernameOf(tenant.doc, target.number), realm), o.clock.now());
      const targets = rec.bindings.map((b) => bindingTarget(b, target.number, 32_000, undefined)).filter((x): x is ForkTarget => x !== undefined);
      if (targets.length === 0) return respond(480, 'Temporarily Unavailable');
      return { action: 'fork', plan: { groups: [{ targets }], exhausted: UNAVAILABLE } };
    }
    if (called === undefined) return respond(404, 'Not Found');
    return route(req, tenant, { kind: 'extension', extension: who.extension }, undefined, undefined);
  };

  async function route(req: SipRequest, tenant: TenantView, origin: CallOrigin, caller: string | undefined, region: RoutingFacts['callerRegion']): Promise<RoutingDecision> {
    const base: CallBase = { origin, caller, region, time: o.clock.now(), seed: seed() };
    // Built only if something is logged: most calls log nothing at the production level.
    const log = new LazyChildLogger(o.log, { callId: req.callId, tenant: tenant.id });
    let plan: Plan;
    let explanation: Explanation;
    try {
      const ev = evaluate(tenant.compiled, factsOf(req, tenant, base), { global: o.index.global() });
      plan = ev.plan;
      explanation = ev.explanation;
      log.debug({ outcome: explanation.outcome, summary: explanation.summary }, 'routed');
    } catch (err) {
      log.error({ err }, 'routing evaluation failed');
      return respond(500, 'Routing failed');
    }
    const matched = explanation.routes.find((r) => r.matchedRule !== undefined);
    const rec: CallRecord = {
      callId: req.callId, tenant: tenant.id, origin, called: userOf(req.uri) ?? '',
      ...(origin.kind === 'extension' ? { caller: origin.extension } : caller !== undefined ? { caller } : {}),
      ...(region ? { callerRegion: region } : {}),
      ...(matched ? { route: matched.route, rule: matched.matchedRule } : {}),
      startedAt: base.time, attempts: [],
    };
    const run: CallRun = { req, tenant, realm: o.index.realmOf(tenant.doc), base, plan, log, rec, steps: 0 };
    const d = (await runStep(run, 0)) ?? { action: 'respond', ...UNAVAILABLE };
    const tracker = o.tracker;
    if (!tracker) return d;
    // Numbers the tenant does not have are not its calls: no record.
    const recorded = explanation.outcome !== 'not-found' && explanation.outcome !== 'invalid-number';
    if (d.action !== 'fork') {
      if (recorded) tracker.refused(rec, d.status);
      return d;
    }
    if (!tracker.start(rec, tenant.doc.limits?.maxConcurrentCalls)) {
      log.info({ limit: tenant.doc.limits?.maxConcurrentCalls }, 'tenant at its concurrent-call limit');
      tracker.refused(rec, 503);
      return respond(503, 'Too many calls for this tenant', [['Retry-After', String(LIMIT_RETRY_AFTER_S)]]);
    }
    const callId = req.callId;
    return { ...d, onFinal: (status) => tracker.final(callId, status), onRinging: () => tracker.ringing(callId) };
  }
}

function factsOf(req: SipRequest, tenant: TenantView, base: CallBase, ivr?: { menu: string; digits: string }): RoutingFacts {
  return {
    tenant: tenant.id, origin: base.origin, called: userOf(req.uri) ?? '', time: base.time, seed: base.seed,
    ...(base.caller !== undefined ? { caller: base.caller } : {}),
    ...(base.region ? { callerRegion: base.region } : {}),
    ...(ivr ? { ivr } : {}),
  };
}

/** One ring or forward step while its groups are hunted, one fork per group. */
interface StepRun {
  readonly step: RingStep | ForwardStep;
  /** The step with the round-robin rotation applied. */
  readonly ring: RingStep;
  readonly extra: ForkTarget['headers'];
  nextGroup: number;
  /** Epoch ms when the step's overallTimeoutMs runs out. */
  readonly deadline: number | undefined;
  /** The most telling failure of the groups so far. */
  best: PlanFailure | undefined;
}

/** Which failure says most about a hunt (§16.7 prefers real responses, 6xx first, over timeouts). */
const FAILURE_RANK: Readonly<Record<PlanFailure['kind'], number>> = {
  declined: 6, busy: 5, rejected: 4, 'no-answer': 3, unreachable: 2, cancelled: 1, answered: 0,
};

interface GatewayAttempt {
  target: ExternalTarget;
  /** Index in target.gateways of the gateway this branch used. */
  index: number;
  extra: ForkTarget['headers'];
}

function uriIsLocal(text: string, isLocal: (u: SipUri) => boolean): boolean {
  try {
    return isLocal(parseUri(text));
  } catch {
    return false;
  }
}
