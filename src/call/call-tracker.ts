/**
 * Calls in progress on this node: the per-tenant concurrent-call limit
 * (TenantLimits.maxConcurrentCalls) and the call record every call ends
 * with (the CDR: who called whom, which rule matched, every target tried
 * with its outcome and timings, answer and end times, the disposition).
 *
 * A call is tracked from the moment the executor routes it. It ends at its
 * final failure response, or — when answered — at a BYE of its dialog
 * passing through the proxy. A call whose BYE never passes (a phone that
 * vanished, a BYE sent around the proxy) ends after `maxCallMs`, so a leak
 * cannot lock a tenant out for good; its record says so (`endedBy`).
 *
 * Listeners (CDR writer, webhooks, metrics) are told of `ringing`,
 * `answered` and `ended`, exactly once each at most, never inside the SIP
 * stack's call stack in a way that could break it: a throwing listener is
 * logged and ignored.
 */
import type { Clock, TimerHandle } from '../sip/clock.js';
import type { Logger } from '../sip/logger.js';
import type { SipRequest } from '../sip/message/message.js';
import type { BranchOutcomeKind } from '../sip/proxy/fork-plan.js';
import { observeInDialog, type ProxiedDialog } from '../sip/proxy/proxied-dialog.js';
import type { CdrAttempt, CdrDisposition, CdrRecord } from '../store/cdr-store.js';

/** A call's record is the CDR it ends as (src/store/cdr-store.ts), attempts typed by the proxy's outcome kinds. */
export type Disposition = CdrDisposition;

export interface TargetAttempt extends CdrAttempt {
  outcome: BranchOutcomeKind;
}

export interface CallRecord extends Omit<CdrRecord, 'attempts'> {
  attempts: TargetAttempt[];
}

export interface CallListener {
  ringing?(rec: Readonly<CallRecord>): void;
  answered?(rec: Readonly<CallRecord>): void;
  ended?(rec: Readonly<CallRecord>): void;
}

interface Tracked {
  rec: CallRecord;
  timer: TimerHandle | undefined;
  /** The last failure kind the plan reported (the executor's `next`), for the disposition. */
  lastFailure: BranchOutcomeKind | undefined;
  /** The answered call's dialog as the proxy can address it (hang-up). */
  dialog?: ProxiedDialog;
  /** An administrator ended it before the answer: the final response is ours, not a failure of the call. */
  byAdmin?: boolean;
}

/** What ends a call from the middle: the proxy's BYEs for an answered call, its CANCELs for a ringing one. */
export interface CallEnder {
  /** BYE to both parties; resolves with what each answered. */
  hangUp(dialog: ProxiedDialog): Promise<{ caller: number; callee: number }>;
  /** Stops a call that has not been answered (CANCEL its branches, final response to the caller); false when nothing was pending. */
  abort(callId: string): boolean;
}

export type HangUpResult =
  | { state: 'answered'; caller: number; callee: number }
  | { state: 'ringing' }
  | { state: 'unknown' }
  | { state: 'not-addressable' };

export interface CallTrackerOptions {
  clock: Clock;
  log: Logger;
  /** Longest an answered call is tracked without a BYE seen (default 4 h). */
  maxCallMs?: number;
}

export class CallTracker {
  private readonly active = new Map<string, number>();
  /** By Call-ID: the proxy reports BYEs by Call-ID. */
  /**
   * Calls in progress by Call-ID. Replaced by a new Map whenever it empties:
   * a Map with an entry per call keeps replacing its hash table, and once a
   * table has lived through two scavenges V8 allocates every later one in
   * the old generation, where each table it drops keeps the calls it held
   * (records, dialogs) alive until the next full collection (see
   * ServerTransaction.tuState). A new Map starts young again.
   */
  private calls = new Map<string, Tracked>();
  private readonly listeners: CallListener[] = [];
  private readonly maxCallMs: number;

  constructor(private readonly o: CallTrackerOptions) {
    this.maxCallMs = o.maxCallMs ?? 4 * 3600_000;
  }

  listen(l: CallListener): () => void {
    this.listeners.push(l);
    return () => {
      const i = this.listeners.indexOf(l);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** Calls of a tenant in progress on this node. */
  count(tenant: string): number {
    return this.active.get(tenant) ?? 0;
  }

  /** Every call in progress (admin API: active calls). */
  list(): Array<Readonly<CallRecord>> {
    return [...this.calls.values()].map((c) => c.rec);
  }

  /**
   * Starts tracking a call that will ring something, unless its tenant is at
   * `limit` (then false: refuse it). The same Call-ID routed again (a
   * spiral back to us) is the same call.
   */
  start(rec: CallRecord, limit: number | undefined): boolean {
    if (this.calls.has(rec.callId)) return true;
    const n = this.count(rec.tenant);
    if (limit !== undefined && n >= limit) return false;
    this.active.set(rec.tenant, n + 1);
    this.calls.set(rec.callId, { rec, timer: undefined, lastFailure: undefined });
    return true;
  }

  /** A call refused before ringing anything (blacklist, reject rule, limit): one record, at once. */
  refused(rec: CallRecord, status: number): void {
    rec.finalStatus = status;
    rec.endedAt = this.o.clock.now();
    rec.disposition = status === 486 || status === 600 ? 'busy' : status >= 500 && status !== 603 ? 'failed' : 'rejected';
    rec.endedBy = 'final';
    this.emit('ended', rec);
  }

  /** One target of the call ended (the proxy's branch outcome). */
  attempt(callId: string, a: TargetAttempt): void {
    this.calls.get(callId)?.rec.attempts.push(a);
  }

  /** The plan failed with `kind` (a step's failure), remembered for the disposition. */
  failure(callId: string, kind: BranchOutcomeKind): void {
    const c = this.calls.get(callId);
    if (c) c.lastFailure = kind;
  }

  /** A provisional response went to the caller: the phone rings. */
  ringing(callId: string): void {
    const c = this.calls.get(callId);
    if (!c || c.rec.ringingAt !== undefined) return;
    c.rec.ringingAt = this.o.clock.now();
    this.emit('ringing', c.rec);
  }

  /** The final response the caller got: a failure ends the call, an answer starts the conversation. */
  final(callId: string, status: number): void {
    const c = this.calls.get(callId);
    if (!c) return;
    const rec = c.rec;
    if (status >= 200 && status < 300) {
      if (rec.answeredAt !== undefined) return;
      rec.answeredAt = this.o.clock.now();
      rec.finalStatus = status;
      rec.disposition = 'answered';
      c.timer = this.o.clock.setTimer(this.maxCallMs, () => this.end(callId, 'timeout'));
      this.emit('answered', rec);
      return;
    }
    if (rec.answeredAt !== undefined) return; // a late failure of another fork after the answer
    rec.finalStatus = status;
    // Stopped by an administrator while it rang: refused by the PBX, not abandoned by the caller.
    rec.disposition = c.byAdmin === true ? 'rejected' : dispositionOf(status, c.lastFailure);
    this.end(callId, c.byAdmin === true ? 'admin' : 'final');
  }

  /** A BYE of the call's dialog went through the proxy. */
  bye(callId: string): void {
    if (this.calls.get(callId)?.rec.answeredAt !== undefined) this.end(callId, 'bye');
  }

  /** The proxy has the answered call's dialog (ForkDecision.onAnswered). */
  answeredDialog(callId: string, dialog: ProxiedDialog | undefined): void {
    const c = this.calls.get(callId);
    if (c && dialog) c.dialog = dialog;
  }

  /** An in-dialog request went through the proxy: a BYE ends the call, others keep its dialog current. */
  inDialog(req: SipRequest): void {
    const callId = req.callId;
    const c = this.calls.get(callId);
    if (!c) return;
    if (c.dialog) observeInDialog(c.dialog, req);
    if (req.method === 'BYE') this.bye(callId);
  }

  /**
   * An administrator ends a call of `tenant` (强拆). An answered call gets a
   * BYE on each side and ends at once (its record says `endedBy: admin`);
   * a ringing one is stopped as if the caller had cancelled, and its
   * record is marked the same. Calls of other tenants are `unknown`: the
   * API must not tell them apart from calls that do not exist.
   */
  async hangUp(tenant: string, callId: string, ender: CallEnder): Promise<HangUpResult> {
    const c = this.calls.get(callId);
    if (!c || c.rec.tenant !== tenant) return { state: 'unknown' };
    if (c.rec.answeredAt === undefined) {
      c.byAdmin = true;
      if (!ender.abort(callId)) {
        c.byAdmin = false;
        return { state: 'not-addressable' };
      }
      return { state: 'ringing' };
    }
    const dialog = c.dialog;
    if (!dialog) return { state: 'not-addressable' };
    this.end(callId, 'admin');
    const r = await ender.hangUp(dialog);
    return { state: 'answered', caller: r.caller, callee: r.callee };
  }

  private end(callId: string, by: NonNullable<CallRecord['endedBy']>): void {
    const c = this.calls.get(callId);
    if (!c) return;
    this.calls.delete(callId);
    if (this.calls.size === 0) this.calls = new Map();
    c.timer?.cancel();
    const n = this.count(c.rec.tenant) - 1;
    if (n > 0) this.active.set(c.rec.tenant, n);
    else this.active.delete(c.rec.tenant);
    c.rec.endedAt = this.o.clock.now();
    c.rec.endedBy = by;
    this.emit('ended', c.rec);
  }

  private emit(what: keyof CallListener, rec: CallRecord): void {
    for (const l of this.listeners) {
      const fn = l[what];
      if (!fn) continue;
      try {
        fn.call(l, rec);
      } catch (err) {
        this.o.log.error({ err, event: what, callId: rec.callId }, 'call listener failed');
      }
    }
  }
}

/**
 * What a PBX user means by how a call ended. 487 is the caller hanging up
 * while it rang (the proxy answers 487 to a CANCEL); otherwise the kind of
 * the last failure decides, then the status class.
 */
function dispositionOf(status: number, lastFailure: BranchOutcomeKind | undefined): Disposition {
  if (status === 487) return 'abandoned';
  if (status === 486 || status === 600 || lastFailure === 'busy') return 'busy';
  if (lastFailure === 'no-answer' || status === 408) return 'no-answer';
  if (status === 603 || lastFailure === 'declined' || lastFailure === 'rejected') return 'rejected';
  if (status >= 500 || lastFailure === 'unreachable' || status === 480 || status === 404) return 'failed';
  return 'rejected';
}
