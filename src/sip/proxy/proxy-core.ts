/**
 * Stateful proxy core (RFC 3261 §16): request validation, Route /
 * Record-Route processing, serial and parallel forking with per-branch
 * no-answer timers, the response context of §16.7, CANCEL (§16.10) and
 * in-dialog forwarding.
 *
 * It knows nothing about tenants or rules: what to do with an initial request
 * is asked of an injected `router`, which answers with a ForkPlan or a
 * rejection. REGISTER for our domain goes to an injected registrar.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from '../clock.js';
import { LazyChildLogger, type Logger } from '../logger.js';
import { ownString, SipRequest, SipResponse, type TransportName } from '../message/message.js';
import { parseNameAddr } from '../message/name-addr.js';
import { SipError } from '../message/errors.js';
import type { SipUri } from '../message/uri.js';
import { generateBranch } from '../transaction/branch.js';
import { createResponse, generateTag } from '../transaction/create-response.js';
import { createCancel } from '../transaction/create-cancel.js';
import type { ClientTransaction, ClientTransactionHandler, ServerTransaction, TransactionLayer, TransactionUser } from '../transaction/transaction-layer.js';
import type { Destination, TransportError } from '../transaction/types.js';
import { classifyStatus, type BranchOutcome, type BranchOutcomeKind, type ForkPlan, type ForkTarget } from './fork-plan.js';
import { byeTowards, dialogFromAnswer, type ByeReason, type ProxiedDialog } from './proxied-dialog.js';
import { resolveUri } from './resolve.js';
import { DEFAULT_VALIDATION, validateProxyRequest, type Rejection, type ValidationOptions } from './request-validation.js';

/** Header fields ForkTarget.headers may not touch: §16.6 gives them to the proxy or forbids changing them. */
const PROXY_MANAGED: ReadonlySet<string> = new Set(['via', 'v', 'route', 'record-route', 'max-forwards', 'cseq', 'call-id', 'i', 'from', 'f', 'to', 't', 'content-length', 'l']);

export type RoutingDecision =
  | ({ action: 'respond' } & Rejection)
  | ForkDecision;

export interface ForkDecision {
  action: 'fork';
  plan: ForkPlan;
  onOutcome?: (o: BranchOutcome) => void;
  onFinal?: (status: number) => void;
  /** The first provisional response (180/183...) forwarded to the caller: the call rings. */
  onRinging?: () => void;
  /**
   * The call was answered (first 2xx of an initial INVITE): the dialog as
   * this proxy can address it, for ending the call later (hangUp). Built
   * only when asked for; undefined when the dialog is not addressable.
   */
  onAnswered?: (dialog: ProxiedDialog | undefined) => void;
  /**
   * Failover (INVITE only): asked when the plan is exhausted without an
   * answer and the caller has not cancelled, before anything final is sent
   * upstream. `failure` is the response the plan would end with and what it
   * means. Answer another fork (the hunt goes on in the same response
   * context: the caller keeps ringing), a response to send instead, or
   * undefined to send the plan's own final response.
   */
  next?: (failure: PlanFailure) => Promise<Continuation> | Continuation;
}

export interface PlanFailure {
  /** Status of the final response the plan would send upstream. */
  status: number;
  /** What ended the plan: the best branch outcome (§16.7), no-answer when every branch timed out. */
  kind: BranchOutcomeKind;
}

export type Continuation = ForkDecision | ({ action: 'respond' } & Rejection) | undefined;

/** Decides what to do with an initial (out-of-dialog) request other than REGISTER/CANCEL/ACK. */
export type InitialRequestRouter = (req: SipRequest) => Promise<RoutingDecision> | RoutingDecision;

/** Handles REGISTER (the registrar), responding through the server transaction. */
export type RegisterHandler = (tx: ServerTransaction, req: SipRequest) => void;

/** What the proxy needs to know about its own listeners. */
export interface ProxyInterfaces {
  /** Via sent-by / Record-Route host and port for an outbound transport. */
  viaFor(transport: TransportName): { transport: string; host: string; port: number };
  /** Whether a URI designates this proxy (Route removal, §16.4). */
  isLocalUri(uri: SipUri): boolean;
  /**
   * Where an open connection-oriented flow (WS/TCP connection id) leads, or
   * undefined once it has closed. Lets in-dialog requests reach a peer whose
   * Contact cannot be resolved (a WebSocket client's "xxx.invalid").
   */
  flowDestination?(connectionId: string): Destination | undefined;
}

export interface ProxyCoreOptions {
  layer: TransactionLayer;
  interfaces: ProxyInterfaces;
  clock: Clock;
  log: Logger;
  router: InitialRequestRouter;
  registrar?: RegisterHandler;
  /** Timer C (§16.6 step 11: "MUST be set to be larger than 3 minutes"), the default branch timeout. */
  timerCMs?: number;
  /** T1 of the profile, for the §9.1 give-up after CANCEL. */
  t1Ms?: number;
  validation?: ValidationOptions;
  /**
   * Told of every in-dialog request we forward (a BYE ends a call the router
   * placed): call accounting above the SIP layer without dialog state here.
   */
  onInDialogRequest?: (req: SipRequest) => void;
}

interface Branch {
  readonly ctx: ResponseContext;
  readonly target: ForkTarget;
  readonly startedAt: number;
  request?: SipRequest;
  dest?: Destination;
  tx?: ClientTransaction;
  /** A provisional arrived: CANCEL may be sent (§9.1). */
  provisional: boolean;
  /** We want this branch cancelled; sent once a provisional arrives. */
  cancelWanted: boolean;
  cancelSent: boolean;
  /** Branch no longer counts for the hunt (final response, timeout, error). */
  done: boolean;
  timer?: TimerHandle;
  /** Plain Timer C (no plan timeout): restarted by provisionals. */
  resetsOnProvisional?: boolean;
}

interface ResponseContext {
  readonly tx: ServerTransaction;
  /** The request as received; SipRequest.released() once the context is cleaned up. */
  req: SipRequest;
  /** Replaced when a failover continues the hunt with a new plan. */
  plan: ForkPlan;
  readonly isInvite: boolean;
  readonly inDialog: boolean;
  onOutcome: ((o: BranchOutcome) => void) | undefined;
  onFinal: ((status: number) => void) | undefined;
  onRinging: (() => void) | undefined;
  onAnswered: ForkDecision['onAnswered'];
  next: ForkDecision['next'];
  /** Waiting for `next` to answer: nothing final may be sent meanwhile. */
  continuing: boolean;
  readonly log: Logger;
  groupIndex: number;
  branches: Branch[];
  /** Best final response so far (§16.7 step 6), with whether we synthesised it. */
  best?: { res: SipResponse; synthetic: boolean };
  /** All 401/407 challenges received, to merge (§16.7 step 7). */
  challenges: SipResponse[];
  finalSent: boolean;
  cancelled: boolean;
  stopNew: boolean;
  overallTimer?: TimerHandle;
  /** Neighbours in ProxyCore's list of live contexts (see liveHead); a context is in it while its transaction carries it. */
  prevLive: ResponseContext | undefined;
  nextLive: ResponseContext | undefined;
}

export class ProxyCore implements TransactionUser {
  private readonly layer: TransactionLayer;
  /**
   * Live response contexts, a doubly linked list through the contexts
   * themselves (each also hangs off its server transaction, tx.tuState):
   * no Map, for the reason ServerTransaction.tuState gives.
   */
  private liveHead: ResponseContext | undefined;
  private liveCount = 0;
  /** INVITEs cancelled while the router was still deciding. */
  private readonly cancelledEarly = new WeakSet<ServerTransaction>();
  private readonly timerC: number;
  private readonly t1: number;
  private readonly validation: ValidationOptions;
  /** Key for the MAC that protects flow tokens in our Record-Route (RFC 5626 §5.2). */
  private readonly flowKey = randomBytes(16);
  /**
   * The handler of a branch's client transaction once its response context
   * is cleaned up (final response sent, every branch done). What can still
   * arrive: "Any 2xx response to an INVITE request" MUST be forwarded
   * (§16.7 step 5), the first's retransmissions (RFC 6026 "Accepted") or a
   * late answer of a branch being cancelled; a proxy without the context
   * forwards it statelessly (§16.7: "the element MUST process the response
   * as a stateless proxy"), which sends it where the server transaction
   * would have. Everything else is absorbed: the context has no use for it.
   */
  private readonly doneBranch: ClientTransactionHandler = {
    onResponse: (res) => {
      if (res.status >= 200 && res.status < 300) this.onStrayResponse(res);
    },
    onTimeout: () => undefined,
    onTransportError: () => undefined,
  };

  constructor(private readonly o: ProxyCoreOptions) {
    this.layer = o.layer;
    this.timerC = o.timerCMs ?? 181_000;
    this.t1 = o.t1Ms ?? 500;
    this.validation = o.validation ?? DEFAULT_VALIDATION;
  }

  /** Live response contexts, for metrics and leak tests. */
  get activeContexts(): number {
    return this.liveCount;
  }

  // ---- TransactionUser ---------------------------------------------------

  onRequest(tx: ServerTransaction, req: SipRequest): void {
    try {
      this.handleRequest(tx, req);
    } catch (err) {
      this.o.log.error({ err, callId: req.get('call-id') }, 'proxy failed on request');
      if (err instanceof SipError) this.reply(tx, err.status, err.reason);
      else this.reply(tx, 500, 'Server Internal Error');
    }
  }

  /**
   * ACK for a 2xx is its own transaction-less request: a stateful proxy
   * forwards it like any other request (§16.6 applies, §16.11 for the branch).
   */
  onAck(req: SipRequest): void {
    try {
      const mf = req.maxForwards;
      if (mf === 0) return;
      const own = this.popOwnRoutes(req);
      const fwd = req.clone();
      this.prepareForward(fwd, undefined);
      const hop = this.nextHopUri(fwd);
      this.resolveThen(hop, this.flowTarget(fwd, own.flow), (dest) => {
        this.pushVia(fwd, dest.transport, generateBranch());
        this.layer.sendAck(fwd, dest);
      }, () => undefined);
    } catch (err) {
      this.o.log.debug({ err, callId: req.get('call-id') }, 'dropping unroutable ACK');
    }
  }

  /**
   * A response matching no client transaction — typically a 2xx
   * retransmission after the INVITE client transaction ended. §16.7: "If
   * none is found, the element MUST process the response as a stateless
   * proxy": remove our Via and send it on per the next one (§16.11, §18.2.2).
   */
  onStrayResponse(res: SipResponse): void {
    if (res.vias.length < 2) return;
    const fwd = res.clone();
    fwd.removeFirst('via');
    fwd.source = undefined;
    this.layer.sendStatelessResponse(fwd);
  }

  // ---- request handling ---------------------------------------------------

  private handleRequest(tx: ServerTransaction, req: SipRequest): void {
    if (req.method === 'CANCEL') return this.handleCancel(tx, req);

    // §16.3 request validation.
    const rej = validateProxyRequest(req, this.validation);
    if (rej) return this.reply(tx, rej.status, rej.reason, rej.headers);
    if (this.isLoop(req)) return this.reply(tx, 482, 'Loop Detected');

    // §16.4 Route information preprocessing.
    // "If the Request-URI contains a value this proxy previously placed into a
    //  Record-Route header field (see Section 16.6 item 4), the proxy MUST
    //  replace the Request-URI in the request with the last value from the
    //  Route header field, and remove that value from the Route header field."
    if (this.o.interfaces.isLocalUri(req.uri) && req.uri.params.has('lr') && req.has('route')) {
      const routes = req.getAll('route');
      const last = routes[routes.length - 1];
      if (last !== undefined) {
        req.uri = parseNameAddr(last, 'Route').uri;
        req.headers = req.headers.filter((h, i, all) => !(h.name === 'route' && i === lastIndexOf(all, 'route')));
      }
    }
    // "If the first value in the Route header field indicates this proxy, the
    //  proxy MUST remove that value from the request."
    const own = this.popOwnRoutes(req);
    const hadOwnRoute = own.popped;

    const inDialog = req.to.tag !== undefined;
    if (inDialog) {
      // We Record-Route every dialog we proxy, so in-dialog requests for us carry our Route.
      if (!hadOwnRoute) {
        if (this.o.interfaces.isLocalUri(req.uri)) return this.reply(tx, 481, 'Call/Transaction Does Not Exist');
        return this.reply(tx, 403, 'Not relaying in-dialog requests that did not route through this proxy');
      }
      const observe = this.o.onInDialogRequest;
      if (observe) callSafely(this.o.log, 'onInDialogRequest', () => observe(req));
      // The last Route of ours may name the flow the next hop is on (see recordRoute()).
      const dest = this.flowTarget(req, own.flow);
      return this.startContext(tx, req, { action: 'fork', plan: { groups: [{ targets: [dest ? { uri: req.uri, dest } : { uri: req.uri }] }] } }, true);
    }

    // We are the registrar of every domain we serve (§10.3); nothing is relayed.
    if (req.method === 'REGISTER' && this.o.registrar) {
      this.o.registrar(tx, req);
      return;
    }

    let decision: Promise<RoutingDecision> | RoutingDecision;
    try {
      decision = this.o.router(req);
    } catch (err) {
      this.o.log.error({ err, callId: req.callId }, 'router failed');
      return this.reply(tx, 500, 'Server Internal Error');
    }
    const apply = (d: RoutingDecision): void => {
      if (this.cancelledEarly.has(tx)) return this.reply(tx, 487, 'Request Terminated');
      if (d.action === 'respond') return this.reply(tx, d.status, d.reason, d.headers);
      this.startContext(tx, req, d, false);
    };
    if (decision instanceof Promise) {
      const fail = (err: unknown): void => {
        this.o.log.error({ err, callId: req.callId }, 'router failed');
        this.reply(tx, 500, 'Server Internal Error');
      };
      // A throw inside apply() would otherwise reject the promise .then()
      // returns, which nobody awaits: an unhandled rejection ends the process.
      decision.then((d) => {
        try {
          apply(d);
        } catch (err) {
          fail(err);
        }
      }, fail);
    } else {
      apply(decision);
    }
  }

  /**
   * §16.10: "If a matching response context is found, the element MUST
   * immediately return a 200 (OK) response to the CANCEL request. ... the
   * element MUST generate CANCEL requests for all pending client
   * transactions in the context". Without any matching INVITE we answer 481
   * rather than relay a CANCEL for a transaction we never saw.
   */
  private handleCancel(tx: ServerTransaction, req: SipRequest): void {
    const inv = this.layer.findInviteForCancel(req);
    if (!inv) return this.reply(tx, 481, 'Call/Transaction Does Not Exist');
    this.reply(tx, 200, 'OK');
    const ctx = contextOf(inv);
    if (!ctx) {
      // Still being routed (or already answered): answer 487 when routing returns.
      if (!inv.lastResponse || inv.lastResponse.status < 200) this.cancelledEarly.add(inv);
      return;
    }
    if (ctx.finalSent) return;
    ctx.cancelled = true;
    ctx.stopNew = true;
    for (const b of ctx.branches) if (!b.done) this.cancelBranch(b);
    // Branches that never got going (still resolving) end here.
    this.checkProgress(ctx);
  }

  private startContext(tx: ServerTransaction, req: SipRequest, d: ForkDecision, inDialog: boolean): void {
    const isInvite = req.method === 'INVITE';
    const plan = d.plan;
    const ctx: ResponseContext = {
      tx, req, plan, inDialog, onOutcome: d.onOutcome, onFinal: d.onFinal, onRinging: d.onRinging, onAnswered: d.onAnswered,
      next: isInvite && !inDialog ? d.next : undefined, continuing: false,
      isInvite,
      // A copy: the Call-ID as parsed is a slice of the whole request's text.
      log: new LazyChildLogger(this.o.log, { callId: ownString(req.callId) }),
      groupIndex: -1, branches: [], challenges: [],
      finalSent: false, cancelled: false, stopNew: false,
      prevLive: undefined, nextLive: this.liveHead,
    };
    if (this.liveHead) this.liveHead.prevLive = ctx;
    this.liveHead = ctx;
    this.liveCount++;
    tx.tuState = ctx;
    this.startPlan(ctx);
  }

  /** Starts ctx.plan from its first group (a new context, or a failover continuing one). */
  private startPlan(ctx: ResponseContext): void {
    const plan = ctx.plan;
    ctx.overallTimer?.cancel();
    ctx.overallTimer = undefined;
    if (ctx.isInvite && plan.overallTimeoutMs !== undefined) {
      ctx.overallTimer = this.o.clock.setTimer(plan.overallTimeoutMs, () => {
        ctx.stopNew = true;
        for (const b of ctx.branches) if (!b.done) this.expireBranch(b);
        this.checkProgress(ctx);
      });
    }
    // An empty plan ends at once, through finish(): its `exhausted` response, or a failover.
    this.nextGroup(ctx);
  }

  private nextGroup(ctx: ResponseContext): void {
    for (;;) {
      ctx.groupIndex++;
      const group = ctx.plan.groups[ctx.groupIndex];
      if (!group) return this.finish(ctx);
      if (group.targets.length === 0) continue;
      // Every branch of the group exists before the first is started: a
      // target that fails synchronously (unresolvable, transport error
      // reported at once) must not find the group empty in checkProgress()
      // and end it — or the whole context — before its siblings were tried.
      const started = group.targets.map((target) => ({ branch: this.newBranch(ctx, target), timeout: target.timeoutMs ?? group.timeoutMs }));
      for (const { branch, timeout } of started) this.startBranch(branch, timeout);
      return;
    }
  }

  private newBranch(ctx: ResponseContext, target: ForkTarget): Branch {
    const branch: Branch = {
      ctx, target, startedAt: this.o.clock.now(),
      provisional: false, cancelWanted: false, cancelSent: false, done: false,
    };
    ctx.branches.push(branch);
    return branch;
  }

  private startBranch(branch: Branch, timeoutMs: number | undefined): void {
    if (branch.done) return; // defensive: nothing ends an unstarted branch today
    const { ctx, target } = branch;
    // §16.6 "Request Forwarding", steps 1-10.
    const fwd = ctx.req.clone();
    fwd.source = undefined;
    if (!ctx.inDialog) fwd.uri = target.uri; // step 2
    if (target.headers) {
      for (const [name] of target.headers) if (!PROXY_MANAGED.has(name.toLowerCase())) fwd.remove(name);
      for (const [name, value] of target.headers) if (!PROXY_MANAGED.has(name.toLowerCase())) fwd.append(name, value);
    }
    this.prepareForward(fwd, target.path); // step 3 (Max-Forwards), Path → Route
    let hop: SipUri | undefined;
    try {
      hop = target.dest ? undefined : this.nextHopUri(fwd);
    } catch {
      // A malformed Path value from the location service: this target is unreachable, the others still ring.
      return this.onBranchFailure(branch, 503, 'Malformed Route');
    }
    this.resolveThen(hop, target.dest, (dest) => {
      if (branch.done) return;
      if (ctx.cancelled) {
        // §16.10: the request was CANCELled while this branch was still
        // resolving: it is never sent, and the context must not wait for it.
        this.endBranch(branch, undefined);
        return this.checkProgress(ctx);
      }
      branch.dest = dest;
      // Step 4: Record-Route, doubled when the request changes transport (RFC 5658).
      if (!ctx.inDialog && RECORD_ROUTED.has(fwd.method)) this.recordRoute(fwd, ctx.req.source?.transport ?? 'udp', dest.transport, ctx.req.source?.connectionId, dest.connectionId);
      // Step 8: our Via, with a loop-detection component in the branch.
      this.pushVia(fwd, dest.transport, `${generateBranch()}.${loopHash(ctx.req)}`);
      branch.request = fwd;
      branch.tx = this.layer.sendRequest(fwd, dest, this.handlerFor(branch));
      // Step 11: Timer C for INVITE, or the plan's no-answer timeout if shorter
      // (not for a branch the transport already failed, synchronously).
      if (ctx.isInvite && !branch.done) {
        const ms = Math.min(timeoutMs ?? this.timerC, this.timerC);
        branch.resetsOnProvisional = timeoutMs === undefined;
        branch.timer = this.o.clock.setTimer(ms, () => this.expireBranch(branch));
      }
    }, (reason) => this.onBranchFailure(branch, 503, reason));
  }

  /**
   * The branch's client-transaction handler, made apart from startBranch():
   * closures made there would share its scope, which holds the forwarded
   * request, and the INVITE client transaction keeps its handler for 64*T1
   * after the answer (RFC 6026): that was a whole request per call.
   */
  private handlerFor(branch: Branch): ClientTransactionHandler {
    return {
      onResponse: (res) => this.onBranchResponse(branch, res),
      onTimeout: () => this.onBranchFailure(branch, 408, 'Request Timeout'),
      onTransportError: (_tx, err: TransportError) => {
        branch.ctx.log.debug({ err, target: branch.target.uri.toString() }, 'branch transport error');
        // §16.7 step... "If a transport error ... the proxy should behave as if
        // the forwarded request received a 503 (Service Unavailable)"; as an
        // unreachable phone it is reported upstream as 480 (see finish()).
        this.onBranchFailure(branch, 503, 'Service Unavailable');
      },
    };
  }

  private onBranchResponse(branch: Branch, res: SipResponse): void {
    const ctx = branch.ctx;
    const status = res.status;
    if (status < 200) {
      branch.provisional = true;
      // §16.7 step 2: "If a provisional response is received, ... reset Timer C".
      // A plan's no-answer timeout is not reset: a 183 with early media is not an answer.
      if (branch.resetsOnProvisional && !branch.done && status > 100) {
        branch.timer?.cancel();
        branch.timer = this.o.clock.setTimer(this.timerC, () => this.expireBranch(branch));
      }
      if (branch.cancelWanted && !branch.cancelSent) this.sendCancel(branch);
      // §16.7 step 5: "Any provisional response other than a 100 (Trying) MUST be forwarded upstream immediately."
      if (status > 100 && !ctx.finalSent && !branch.done) {
        this.forwardUpstream(ctx, res);
        const ringing = ctx.onRinging;
        if (ringing) {
          ctx.onRinging = undefined; // once per call
          callSafely(ctx.log, 'onRinging', ringing);
        }
      }
      return;
    }
    if (status < 300) {
      // "If a 2xx response is received for an INVITE, it MUST be forwarded
      //  immediately" — also when it comes late from a branch we were cancelling.
      const first = !ctx.finalSent;
      this.forwardUpstream(ctx, res);
      if (!branch.done) this.endBranch(branch, status);
      if (first) {
        ctx.finalSent = true;
        ctx.stopNew = true;
        const answered = ctx.onAnswered;
        if (answered && ctx.isInvite && !ctx.inDialog) {
          callSafely(ctx.log, 'onAnswered', () => answered(dialogFromAnswer(ctx.req, res, branch.target.dest, (u) => this.o.interfaces.isLocalUri(u))));
        }
        this.notifyFinal(ctx, status);
        // §16.7 step 10: "the proxy MUST generate a CANCEL request for all pending client transactions".
        for (const b of ctx.branches) if (!b.done) { this.cancelBranch(b); this.endBranch(b, 487, 'cancelled'); }
      }
      this.checkProgress(ctx);
      return;
    }
    if (branch.done) return; // late final of a branch that had timed out
    this.considerFinal(ctx, res, false);
    // ForkPlan.stopOn names statuses that end the hunt: judged on each
    // response as it arrives, not on the best so far (an earlier 480 of group
    // 1 stays "best" over a 486 of group 2 that must stop the hunt).
    if (ctx.plan.stopOn?.(status)) ctx.stopNew = true;
    if (status >= 600 && ctx.plan.globalFailureEndsHunt !== false) {
      // "If a 6xx response is received, it is not immediately forwarded, but the
      //  stateful proxy SHOULD cancel all client pending transactions ... and it
      //  MUST NOT create any new branches in this context."
      ctx.stopNew = true;
      for (const b of ctx.branches) if (!b.done && b !== branch) { this.cancelBranch(b); this.endBranch(b, 487, 'cancelled'); }
    }
    this.endBranch(branch, status);
    this.checkProgress(ctx);
  }

  private onBranchFailure(branch: Branch, status: number, reason: string): void {
    if (branch.done) return;
    const ctx = branch.ctx;
    this.considerFinal(ctx, createResponse(ctx.req, status, reason, { toTag: generateTag() }), true);
    this.endBranch(branch, status);
    this.checkProgress(ctx);
  }

  /** No-answer timeout: CANCEL the branch (§16.8) and move on without waiting for its 487. */
  private expireBranch(branch: Branch): void {
    if (branch.done) return;
    const ctx = branch.ctx;
    this.cancelBranch(branch);
    this.considerFinal(ctx, createResponse(ctx.req, 408, 'Request Timeout', { toTag: generateTag() }), true);
    this.endBranch(branch, 408, 'no-answer');
    this.checkProgress(ctx);
  }

  private endBranch(branch: Branch, status: number | undefined, kind?: BranchOutcome['kind']): void {
    if (branch.done) return;
    branch.done = true;
    branch.timer?.cancel();
    branch.timer = undefined;
    const onOutcome = branch.ctx.onOutcome;
    if (status !== undefined && onOutcome) {
      const outcome: BranchOutcome = { target: branch.target, status, kind: kind ?? classifyStatus(status), elapsedMs: this.o.clock.now() - branch.startedAt };
      // Called from timers and transaction callbacks: a throwing listener must
      // not escape (from a timer it would end the process) nor stop the hunt.
      callSafely(branch.ctx.log, 'onOutcome', () => onOutcome(outcome));
    }
  }

  private notifyFinal(ctx: ResponseContext, status: number): void {
    const onFinal = ctx.onFinal;
    if (onFinal) callSafely(ctx.log, 'onFinal', () => onFinal(status));
  }

  /**
   * §9.1: "If no provisional response has been received, the CANCEL request
   * MUST NOT be sent; rather, the client MUST wait for the arrival of a
   * provisional response before sending the request."
   */
  private cancelBranch(branch: Branch): void {
    if (!branch.ctx.isInvite || branch.cancelSent) return;
    branch.cancelWanted = true;
    if (branch.provisional) this.sendCancel(branch);
  }

  /**
   * §9.1: "The Request-URI, Call-ID, To, the numeric part of CSeq, and From
   * header fields in the CANCEL request MUST be identical to those in the
   * request being cancelled, including tags. ... a CANCEL constructed by a
   * client MUST have only a single Via header field value matching the top Via
   * value in the request being cancelled. ... If the request being cancelled
   * contains a Route header field, the CANCEL request MUST include that Route
   * header field's values."
   */
  private sendCancel(branch: Branch): void {
    const inv = branch.request;
    const dest = branch.dest;
    if (!inv || !dest || branch.cancelSent) return;
    branch.cancelSent = true;
    const cancel = createCancel(inv);
    this.layer.sendRequest(cancel, dest, { onResponse: () => undefined, onTimeout: () => undefined, onTransportError: () => undefined });
    // §9.1: "If no final response has been received after 64*T1 seconds, the
    // client SHOULD then consider the original transaction cancelled and SHOULD
    // destroy the client transaction handling the original request."
    // Terminating the transaction tells nobody, so the branch is ended here as
    // well ("consider the original transaction cancelled"): otherwise a
    // CANCELled context would wait for Timer C before answering 487 upstream.
    const tx = branch.tx;
    this.o.clock.setTimer(64 * this.t1, () => {
      if (tx && tx.state !== 'Terminated') tx.terminate();
      if (!branch.done) {
        this.endBranch(branch, 487, 'cancelled');
        this.checkProgress(branch.ctx);
      }
    });
  }

  /** §16.7 step 6: "choose the best final response". */
  private considerFinal(ctx: ResponseContext, res: SipResponse, synthetic: boolean): void {
    if (!synthetic && (res.status === 401 || res.status === 407)) ctx.challenges.push(res);
    const cur = ctx.best;
    if (!cur || better(res.status, synthetic, cur.res.status, cur.synthetic)) ctx.best = { res, synthetic };
  }

  private checkProgress(ctx: ResponseContext): void {
    // Earlier groups' branches are all done (answered, expired or failed) before a group starts.
    if (ctx.branches.some((b) => !b.done)) return;
    if (ctx.finalSent) return this.cleanup(ctx);
    // 6xx and ForkPlan.stopOn set stopNew as their responses arrive.
    const stop = ctx.stopNew || ctx.cancelled;
    if (!stop && ctx.groupIndex + 1 < ctx.plan.groups.length) return this.nextGroup(ctx);
    this.finish(ctx);
  }

  /** Sends the best response upstream once every branch is done (§16.7 step 6–9), or fails over. */
  private finish(ctx: ResponseContext): void {
    if (ctx.finalSent) return this.cleanup(ctx);
    if (ctx.continuing) return; // continueWith() decides, and sees ctx.cancelled
    const next = ctx.next;
    if (next && !ctx.cancelled) {
      ctx.continuing = true;
      const failure = this.planFailure(ctx);
      let answer: Promise<Continuation> | Continuation;
      try {
        answer = next(failure);
      } catch (err) {
        ctx.log.error({ err }, 'failover (next) failed');
        answer = undefined;
      }
      if (answer instanceof Promise) {
        answer.then((c) => this.continueWith(ctx, c), (err: unknown) => {
          ctx.log.error({ err }, 'failover (next) failed');
          this.continueWith(ctx, undefined);
        });
      } else {
        this.continueWith(ctx, answer);
      }
      return;
    }
    this.sendFinal(ctx);
  }

  /** What the exhausted plan amounts to, for the failover decision. */
  private planFailure(ctx: ResponseContext): PlanFailure {
    const best = ctx.best;
    if (!best) {
      const ex = ctx.plan.exhausted ?? UNAVAILABLE;
      return { status: ex.status, kind: 'unreachable' };
    }
    if (best.synthetic) {
      const ex = ctx.plan.exhausted ?? UNAVAILABLE;
      return { status: ex.status, kind: best.res.status === 408 ? 'no-answer' : 'unreachable' };
    }
    return { status: best.res.status, kind: classifyStatus(best.res.status) };
  }

  private continueWith(ctx: ResponseContext, c: Continuation): void {
    ctx.continuing = false;
    if (ctx.finalSent) return this.cleanup(ctx);
    // A CANCEL that arrived meanwhile wins (sendFinal answers 487).
    if (ctx.cancelled || c === undefined) return this.sendFinal(ctx);
    try {
      if (c.action === 'respond') {
        ctx.finalSent = true;
        this.reply(ctx.tx, c.status, c.reason, c.headers);
        this.notifyFinal(ctx, c.status);
        return this.cleanup(ctx);
      }
      // The hunt goes on in the same response context: a new plan, a fresh §16.7
      // choice of best response (the previous step's failures are settled).
      ctx.plan = c.plan;
      ctx.next = c.next;
      if (c.onOutcome) ctx.onOutcome = c.onOutcome;
      if (c.onFinal) ctx.onFinal = c.onFinal;
      if (c.onAnswered) ctx.onAnswered = c.onAnswered;
      ctx.groupIndex = -1;
      ctx.best = undefined;
      ctx.challenges = [];
      ctx.stopNew = false;
      this.startPlan(ctx);
    } catch (err) {
      ctx.log.error({ err }, 'failover plan failed');
      if (!ctx.finalSent) {
        ctx.finalSent = true;
        this.reply(ctx.tx, 500, 'Server Internal Error');
        this.notifyFinal(ctx, 500);
      }
      this.cleanup(ctx);
    }
  }

  private sendFinal(ctx: ResponseContext): void {
    if (ctx.finalSent) return this.cleanup(ctx);
    ctx.finalSent = true;
    let res: SipResponse;
    const best = ctx.best;
    if (ctx.cancelled && (!best || best.synthetic || best.res.status !== 487)) {
      res = createResponse(ctx.req, 487, 'Request Terminated', { toTag: generateTag() });
    } else if (!best) {
      const ex = ctx.plan.exhausted ?? UNAVAILABLE;
      res = createResponse(ctx.req, ex.status, ex.reason, { toTag: generateTag() });
    } else if (best.synthetic) {
      // Nobody answered with a response of their own: timeouts and unreachable
      // phones. A PBX caller expects "temporarily unavailable" (or the plan's choice).
      const ex = ctx.plan.exhausted ?? (best.res.status === 408 && !ctx.isInvite ? REQUEST_TIMEOUT : UNAVAILABLE);
      res = createResponse(ctx.req, ex.status, ex.reason, { toTag: generateTag() });
    } else if (best.res.status === 503) {
      // "If the only response that was received is a 503, the proxy SHOULD generate a 500 response".
      res = createResponse(ctx.req, 500, 'Server Internal Error', { toTag: best.res.to.tag ?? generateTag() });
    } else {
      res = best.res.clone();
      res.removeFirst('via');
      // §16.7 step 7: "the proxy MUST collect any WWW-Authenticate and Proxy-Authenticate header field values from all other 401 and 407 responses".
      if (res.status === 401 || res.status === 407) {
        for (const c of ctx.challenges) {
          if (c === best.res) continue;
          for (const v of c.getAll('www-authenticate')) res.append('www-authenticate', v);
          for (const v of c.getAll('proxy-authenticate')) res.append('proxy-authenticate', v);
        }
      }
      res.source = undefined;
      ctx.tx.respond(res);
      this.notifyFinal(ctx, res.status);
      return this.cleanup(ctx);
    }
    ctx.tx.respond(res);
    this.notifyFinal(ctx, res.status);
    this.cleanup(ctx);
  }

  private cleanup(ctx: ResponseContext): void {
    if (ctx.branches.some((b) => !b.done)) return;
    ctx.overallTimer?.cancel();
    this.unlink(ctx);
    // The INVITE client transactions stay for 64*T1 (RFC 6026 "Accepted") and
    // their handlers keep this context reachable: drop what is no longer
    // needed so it is not carried into the old generation for 32 s per call.
    ctx.best = undefined;
    ctx.challenges = [];
    for (const b of ctx.branches) {
      // A branch still waiting for a provisional to send its CANCEL (§9.1) keeps its request and handler.
      if (b.cancelWanted && !b.cancelSent) continue;
      b.request = undefined;
      if (b.tx && b.tx.state !== 'Terminated') b.tx.setHandler(this.doneBranch);
    }
    // Nothing reads them once every branch is done and the final response is
    // out (late responses only go upstream), and they keep the router's whole
    // per-call state (plan, targets, closures) reachable.
    ctx.onOutcome = ctx.onFinal = ctx.onRinging = ctx.onAnswered = ctx.next = undefined;
    ctx.plan = DONE_PLAN;
    // The server transaction has released the request by now (it has sent its final response).
    ctx.req = ctx.tx.request;
  }

  /** Takes a context out of the live list and off its transaction. Idempotent. */
  private unlink(ctx: ResponseContext): void {
    if (ctx.tx.tuState !== ctx) return;
    ctx.tx.tuState = undefined;
    if (ctx.prevLive) ctx.prevLive.nextLive = ctx.nextLive;
    else this.liveHead = ctx.nextLive;
    if (ctx.nextLive) ctx.nextLive.prevLive = ctx.prevLive;
    ctx.prevLive = ctx.nextLive = undefined;
    this.liveCount--;
  }

  /** §16.7 step 9: "The proxy removes the topmost Via header field value from the response." */
  private forwardUpstream(ctx: ResponseContext, res: SipResponse): void {
    const up = res.clone();
    up.removeFirst('via');
    up.source = undefined;
    ctx.tx.respond(up);
  }

  private reply(tx: ServerTransaction, status: number, reason: string, headers?: Array<[string, string]>): void {
    const res = createResponse(tx.request, status, reason, { toTag: status > 100 ? generateTag() : undefined });
    for (const [n, v] of headers ?? []) res.append(n, v);
    tx.respond(res);
  }

  // ---- ending a dialog ------------------------------------------------

  /**
   * Stops an unanswered INVITE of this Call-ID as a CANCEL from the caller
   * would (§16.10): its pending branches are cancelled and the caller gets
   * 487. False when no such call is pending here (answered, ended, or still
   * being routed). A linear scan: an administrator's action, not per call.
   */
  abort(callId: string): boolean {
    for (let ctx = this.liveHead; ctx; ctx = ctx.nextLive) {
      if (!ctx.isInvite || ctx.inDialog || ctx.finalSent || ctx.req.callId !== callId) continue;
      ctx.cancelled = true;
      ctx.stopNew = true;
      for (const b of ctx.branches) if (!b.done) this.cancelBranch(b);
      // Do not wait for the 487s of the branches: the caller is told at once.
      for (const b of ctx.branches) if (!b.done) this.endBranch(b, 487, 'cancelled');
      this.checkProgress(ctx);
      return true;
    }
    return false;
  }

  /**
   * Ends an answered call from the middle: a BYE to each party on the
   * other's behalf (the dialog state of dialogFromAnswer, kept current by
   * observeInDialog). Each BYE is its own non-INVITE client transaction
   * (§17.1.2: retransmitted over UDP, Timer F). Resolves with the final
   * status each party answered (408 on timeout, 503 when unreachable); 481
   * means that party had already left the dialog.
   */
  hangUp(dialog: ProxiedDialog, reason?: ByeReason): Promise<{ caller: number; callee: number }> {
    const one = (to: 'caller' | 'callee'): Promise<number> => new Promise((resolve) => {
      let bye;
      try {
        bye = byeTowards(dialog, to, reason);
      } catch (err) {
        this.o.log.warn({ err, callId: dialog.callId, to }, 'cannot build a BYE for this dialog');
        return resolve(503);
      }
      const { bye: req, hop, dest } = bye;
      this.resolveThen(hop, dest, (d) => {
        this.pushVia(req, d.transport, generateBranch());
        this.layer.sendRequest(req, d, {
          onResponse: (res) => { if (res.status >= 200) resolve(res.status); },
          onTimeout: () => resolve(408),
          onTransportError: () => resolve(503),
        });
      }, () => resolve(503));
    });
    return Promise.all([one('caller'), one('callee')]).then(([caller, callee]) => ({ caller, callee }));
  }

  // ---- forwarding helpers ---------------------------------------------

  /**
   * Removes every leading Route value that designates us (we may have double
   * Record-Routed), and returns the flow token (user part) of the last one:
   * the value facing the next hop.
   */
  private popOwnRoutes(req: SipRequest): { popped: boolean; flow: string | undefined } {
    let popped = false;
    let flow: string | undefined;
    for (;;) {
      const top = req.get('route');
      if (top === undefined) return { popped, flow };
      let uri: SipUri;
      try {
        uri = parseNameAddr(top, 'Route').uri;
      } catch {
        throw new SipError('DP_SIP_BAD_HEADER', 'Malformed Route header');
      }
      if (!this.o.interfaces.isLocalUri(uri)) return { popped, flow };
      req.removeFirst('route');
      popped = true;
      flow = uri.user;
    }
  }

  /**
   * RFC 5626 §5.3: a request whose last Route of ours carries a flow token,
   * with no further Route, goes out over that flow (the connection the
   * target's dialog was set up on) instead of to its Request-URI — a
   * WebSocket client's Contact ("xxx.invalid", RFC 7118 §5.2) resolves to
   * nothing. A forged or stale token, or a closed flow, falls back to the URI.
   */
  private flowTarget(req: SipRequest, token: string | undefined): Destination | undefined {
    if (token === undefined || req.has('route') || !this.o.interfaces.flowDestination) return undefined;
    const dot = token.lastIndexOf('.');
    const id = token.slice(0, dot);
    if (dot <= 0 || token !== this.flowToken(id)) return undefined;
    return this.o.interfaces.flowDestination(id);
  }

  /** "<connection id>.<MAC>": unforgeable, so a peer cannot aim in-dialog requests at another client's connection. */
  private flowToken(connectionId: string): string {
    return `${connectionId}.${createHmac('sha256', this.flowKey).update(connectionId).digest('base64url').slice(0, 16)}`;
  }

  /** §16.6 step 3 (Max-Forwards) and RFC 3327 Path → Route. */
  private prepareForward(fwd: SipRequest, path: string[] | undefined): void {
    const mf = fwd.maxForwards;
    fwd.set('max-forwards', String(mf === undefined ? 70 : mf - 1));
    if (path && path.length > 0) {
      for (let i = path.length - 1; i >= 0; i--) fwd.prepend('route', path[i] ?? '');
    }
  }

  /** §16.6 step 6-7: the next hop is the first Route if any, else the Request-URI. */
  private nextHopUri(req: SipRequest): SipUri {
    const top = req.get('route');
    if (top !== undefined) return parseNameAddr(top, 'Route').uri;
    return req.uri;
  }

  private resolveThen(uri: SipUri | undefined, dest: Destination | undefined, ok: (d: Destination) => void, fail: (reason: string) => void): void {
    if (dest) return ok(dest);
    if (!uri) return fail('No destination');
    const r = resolveUri(uri);
    if (r instanceof Promise) r.then(ok, () => fail('Destination unresolvable'));
    else if (r) ok(r);
    else fail('Destination unresolvable');
  }

  private pushVia(req: SipRequest, transport: TransportName, branch: string): void {
    const v = this.o.interfaces.viaFor(transport);
    // Written directly (what Via.toString() gives for these fields): no Map and Via per forwarded request.
    req.prepend('via', `SIP/2.0/${v.transport} ${v.host}:${v.port};branch=${branch}`);
  }

  /**
   * §16.6 step 4: "The URI placed in the Record-Route header field value MUST
   * be a SIP or SIPS URI ... [and] SHOULD contain an lr parameter". When the
   * request crosses transports (e.g. WS → UDP), RFC 5658 double
   * Record-Routing: one value per interface, so each side routes back through
   * the interface it knows.
   *
   * A side reached over a connection (WS, TCP) gets that connection's flow
   * token as the user part of its value (RFC 5626 §5.3), so in-dialog
   * requests towards it reuse the connection (see flowTarget()); two sides
   * on the same transport but different connections (WS → WS) are then
   * double Record-Routed too, one token each.
   */
  private recordRoute(req: SipRequest, inbound: TransportName, outbound: TransportName, inboundFlow?: string, outboundFlow?: string): void {
    const rr = (t: TransportName, flow: string | undefined): string => {
      const v = this.o.interfaces.viaFor(t);
      return `<sip:${flow === undefined ? '' : `${this.flowToken(flow)}@`}${v.host}:${v.port};transport=${t};lr>`;
    };
    if (inbound !== outbound || inboundFlow !== outboundFlow) req.prepend('record-route', rr(inbound, inboundFlow));
    req.prepend('record-route', rr(outbound, outboundFlow));
  }

  /**
   * §16.3 step 4 (loop detection): a Via of ours whose branch carries the
   * same loop hash means this very request came back unchanged: 482. A
   * spiral (changed Request-URI or Route) hashes differently and passes.
   * "the element MUST check whether its own address is already present in
   * the Via header field values": all of them, the top one included — a
   * request we sent to ourselves comes back with our Via on top.
   */
  private isLoop(req: SipRequest): boolean {
    let hash: string | undefined;
    for (const via of req.vias) {
      const ours = this.o.interfaces.viaFor(via.transport.toLowerCase() as TransportName);
      if (via.host.toLowerCase() !== ours.host.toLowerCase() || (via.port ?? 5060) !== ours.port) continue;
      // Hashed as startBranch() hashed it: after §16.4 popped our own Route
      // values. Hashing them here too would make a loop whose copies come
      // back with our Route (a Path naming us) look like a spiral for ever.
      hash ??= loopHash(req, this.routesAfterOwn(req));
      if (via.branch?.endsWith(`.${hash}`)) return true;
    }
    return false;
  }

  /** The Route values left once the leading ones designating us are removed (§16.4), without changing the request. */
  private routesAfterOwn(req: SipRequest): string[] {
    const routes = req.getAll('route');
    let i = 0;
    for (; i < routes.length; i++) {
      let uri: SipUri;
      try {
        uri = parseNameAddr(routes[i] ?? '', 'Route').uri;
      } catch {
        break;
      }
      if (!this.o.interfaces.isLocalUri(uri)) break;
    }
    return routes.slice(i);
  }
}

const UNAVAILABLE = { status: 480, reason: 'Temporarily Unavailable' };
/** The plan of a context that is over. */
const DONE_PLAN: ForkPlan = Object.freeze({ groups: [] });
const REQUEST_TIMEOUT = { status: 408, reason: 'Request Timeout' };

const RECORD_ROUTED = new Set(['INVITE', 'SUBSCRIBE', 'REFER', 'NOTIFY']);

/**
 * "the proxy ... compute[s] a hash ... over ... the Request-URI, the To tag, the
 * From tag, the Call-ID, the CSeq number ... and the Route, Proxy-Require and
 * Proxy-Authorization header fields" (§16.6 step 8).
 */
function loopHash(req: SipRequest, routes: readonly string[] = req.getAll('route')): string {
  // Not a security boundary, only "is this the same request again?": a 64-bit
  // FNV-1a in two 32-bit lanes is plenty and far cheaper than a crypto hash
  // object per forwarded request.
  const h = { a: 0x811c9dc5, b: 0xcbf29ce4 };
  fnv(h, req.uri.toString());
  fnv(h, req.to.tag ?? '');
  fnv(h, req.from.tag ?? '');
  fnv(h, req.callId);
  fnv(h, String(req.cseq.seq));
  for (const r of routes) fnv(h, r);
  for (const r of req.getAll('proxy-require')) fnv(h, r);
  return (h.a >>> 0).toString(36) + (h.b >>> 0).toString(36);
}

function fnv(h: { a: number; b: number }, s: string): void {
  let a = h.a;
  let b = h.b;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x100001b3);
  }
  // Field separator, so ("ab","c") and ("a","bc") differ.
  h.a = Math.imul(a ^ 0x7c, 0x01000193);
  h.b = Math.imul(b ^ 0x7c, 0x100001b3);
}

/**
 * §16.7 step 6: "The proxy SHOULD give preference to responses that provide
 * information affecting resubmission of this request, such as 401, 407, 415,
 * 420, and 484 if the 4xx class is chosen."
 */
const RESUBMISSION_4XX = new Set([401, 407, 415, 420, 484]);

/** §16.7 step 6 ordering: 6xx wins; otherwise the lowest class (resubmission 4xx first); real responses beat synthesised ones. */
function better(a: number, aSynthetic: boolean, b: number, bSynthetic: boolean): boolean {
  if (aSynthetic !== bSynthetic) return !aSynthetic;
  const ca = Math.floor(a / 100);
  const cb = Math.floor(b / 100);
  if (ca === 6 || cb === 6) return ca === 6 && cb !== 6;
  if (ca === 4 && cb === 4) return RESUBMISSION_4XX.has(a) && !RESUBMISSION_4XX.has(b);
  return ca < cb;
}

/** Runs a router-supplied listener; what it throws is logged, never propagated into the proxy. */
function callSafely(log: Logger, what: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    log.error({ err, callback: what }, 'routing listener threw');
  }
}

function lastIndexOf(headers: ReadonlyArray<{ name: string }>, name: string): number {
  for (let i = headers.length - 1; i >= 0; i--) if (headers[i]?.name === name) return i;
  return -1;
}

/** The response context a server transaction carries (see ProxyCore.startContext()), if any. */
function contextOf(tx: ServerTransaction): ResponseContext | undefined {
  return tx.tuState as ResponseContext | undefined;
}
