/**
 * What the four RFC 3261 §17 state machines share: a state with debug-logged
 * transitions, named timers that are all cancelled on termination and whose
 * callbacks never throw, guarded calls into the TU, and sends whose transport
 * errors come back to the state machine only while it is alive.
 */
import type { Clock, TimerHandle } from '../clock.js';
import { LazyChildLogger, type Logger } from '../logger.js';
import { SipRequest, ownString, type MessageSource, type SipResponse } from '../message/message.js';
import type { Destination, TimerConfig, TransactionTransport, TransportError } from './types.js';
import type { WaitQueue, Waiter } from './wait-queue.js';

/**
 * What an INVITE server transaction created by an RFC 2543 request (no
 * magic cookie) keeps of its final response in a wait state: the To tag,
 * which matches the ACK (§17.2.3). Every other wait state keeps the shared
 * SipRequest.released() / SipResponse.released() instead of rows of its own.
 */
export const RESPONSE_SKELETON: readonly string[] = ['to'];
/**
 * What a server transaction keeps of a final response it may resend besides
 * its bytes: the top Via, which routes it (§18.2.2). Logs name the call by
 * the Call-ID kept apart (see release()).
 */
export const RESENT_RESPONSE_ROWS: readonly string[] = ['via'];
/** The same, plus the To tag an RFC 2543 ACK is matched by (§17.2.3). */
export const RESENT_RESPONSE_ROWS_2543: readonly string[] = ['via', 'to'];

/** "Timer D ... at least 32 seconds for unreliable transports" (§17.1.1.2, Table 4). */
export const TIMER_D_UNRELIABLE_MS = 32_000;

/** What a transaction needs from the layer that owns it. */
export interface TransactionContext {
  readonly transport: TransactionTransport;
  readonly clock: Clock;
  readonly timers: TimerConfig;
  /** The layer's logger; each transaction logs through a child of it. */
  readonly log: Logger;
  /** Called exactly once when the transaction reaches "Terminated", before the TU hears of it. */
  readonly forget: (tx: TransactionBase<string>) => void;
  /** The layer's WaitQueue for waits of `ms` (one per duration). */
  readonly waitQueue: (ms: number) => WaitQueue;
}

export abstract class TransactionBase<S extends string> implements Waiter {
  readonly id: string;
  protected readonly ctx: TransactionContext;
  private current: S | 'Terminated';
  /** Built on first use: see `log`. */
  private lazyLog: Logger | undefined;
  private readonly kind: string;
  /**
   * Armed timers as name/handle pairs: a state machine has two at most at a
   * time, and a Map per transaction (kept 64*T1 per call leg) cost more
   * memory than the transaction itself.
   */
  private armed: Array<string | TimerHandle> | undefined;
  /** Where the request that created a server transaction came from (its WS/TCP connection). */
  protected readonly requestSource: MessageSource | undefined;
  /** The wait-state timer running (D, I, J, K, L or M), its queue and slot: see waitThenTerminate(). */
  private waitTimer: string | undefined;
  private waitQueue: WaitQueue | undefined;
  private waitSlot = 0;
  /** The Call-ID for logs once the request is released (see release()). */
  private waitCallId: string | undefined;

  /**
   * `id` is the matching key (see the transaction layer), one flat string:
   * the branch logged is read back from it, so that a transaction kept for
   * 64*T1 holds no other string of its own.
   */
  protected constructor(ctx: TransactionContext, id: string, initial: S, kind: string, req: SipRequest) {
    this.ctx = ctx;
    this.id = id;
    this.current = initial;
    this.requestSource = req.source;
    this.kind = kind;
  }

  /**
   * This transaction's child logger, made when something is first logged at
   * an enabled level: thousands of transactions a second are created and
   * almost none logs, so none pays for a logger and its bindings object.
   */
  protected get log(): Logger {
    return (this.lazyLog ??= new LazyChildLogger(this.ctx.log, { callId: this.waitCallId ?? this.request.get('call-id'), branch: branchOfKey(this.id), tx: this.kind }));
  }

  /**
   * The shared stand-in for `req` in a wait state (SipRequest.released()),
   * keeping a copy of its Call-ID for this transaction's logs. The copy is
   * shared with the transaction released just before when the Call-ID is
   * the same (a proxied call's INVITE client and server transactions, its
   * BYE's), so a call keeps one or two instead of four.
   */
  protected release(req: SipRequest): SipRequest {
    const callId = req.get('call-id');
    if (callId !== undefined && this.waitCallId === undefined && this.lazyLog === undefined) this.waitCallId = sharedCallId(callId);
    return SipRequest.released(req.method);
  }

  private get debugEnabled(): boolean {
    const l = this.ctx.log;
    return l.isLevelEnabled ? l.isLevelEnabled('debug') : true;
  }

  get state(): S | 'Terminated' {
    return this.current;
  }

  get isTerminated(): boolean {
    return this.current === 'Terminated';
  }

  protected transition(next: S): void {
    if (this.current === next) return;
    if (this.debugEnabled) this.log.debug({ from: this.current, to: next }, 'transaction state change');
    this.current = next;
    if (next === 'Accepted' || next === 'Completed' || next === 'Confirmed') this.compactForWait();
  }

  /**
   * Entering a wait state (Timers D, I, J, K, L, M keep the transaction for up
   * to 64*T1): release what the state no longer needs. A message nothing
   * will be built from is replaced by the shared SipRequest.released() /
   * SipResponse.released(); a response that may be resent keeps its bytes.
   */
  protected abstract compactForWait(): void;

  abstract readonly request: SipRequest;
  abstract readonly lastResponse: SipResponse | undefined;

  /**
   * "The client transaction MUST be destroyed the instant it enters the
   * "Terminated" state" (§17.1.1.2); likewise for server transactions
   * (§17.2.1, RFC 6026 §8.7). Timers are cancelled, the layer forgets the
   * transaction, then the TU is told. Idempotent.
   */
  protected terminate(reason: string): void {
    this.end(reason);
  }

  /** terminate() itself, which the client transactions override with the TU's version. */
  private end(reason: string): void {
    if (this.current === 'Terminated') return;
    if (this.waitQueue !== undefined) {
      this.waitQueue.cancel(this.waitSlot);
      this.waitQueue = undefined;
    }
    const armed = this.armed;
    if (armed) for (let i = 1; i < armed.length; i += 2) (armed[i] as TimerHandle).cancel();
    this.armed = undefined;
    if (this.debugEnabled) this.log.debug({ from: this.current, to: 'Terminated', reason }, 'transaction state change');
    this.current = 'Terminated';
    this.ctx.forget(this);
    this.tellTu('onTerminated', () => this.notifyTerminated());
  }

  protected abstract notifyTerminated(): void;

  /**
   * Starts the timer of a wait state (Timers D, I, J, K, L, M), whose only
   * effect is "MUST transition to the "Terminated" state" when it fires.
   * These run for up to 64*T1 in every call's transactions, so they go to
   * the layer's WaitQueue rather than a clock timer each (see there).
   */
  protected waitThenTerminate(timer: string, ms: number): void {
    this.waitTimer = timer;
    const q = this.ctx.waitQueue(ms);
    this.waitQueue = q;
    this.waitSlot = q.add(this);
  }

  /** The WaitQueue's call: the wait-state timer fired. */
  waitExpired(): void {
    const timer = this.waitTimer;
    if (timer === undefined || this.current === 'Terminated') return;
    this.waitQueue = undefined;
    try {
      this.end(`Timer ${timer}`);
    } catch (err) {
      this.log.error({ err, timer }, 'transaction timer callback failed');
    }
  }

  /** Arms (or re-arms) a named timer; its callback runs only if the timer was not stopped since. */
  protected startTimer(name: string, ms: number, fn: () => void): void {
    this.stopTimer(name);
    const handle = this.ctx.clock.setTimer(ms, () => {
      if (!this.disarm(name, handle)) return;
      try {
        fn();
      } catch (err) {
        this.log.error({ err, timer: name }, 'transaction timer callback failed');
      }
    });
    (this.armed ??= []).push(name, handle);
  }

  protected stopTimer(name: string): void {
    const i = this.armedIndex(name);
    if (i < 0) return;
    (this.armed?.[i + 1] as TimerHandle).cancel();
    this.unarm(i);
  }

  /** Forgets a fired timer; false when it was stopped or re-armed meanwhile. */
  private disarm(name: string, handle: TimerHandle): boolean {
    const i = this.armedIndex(name);
    if (i < 0 || this.armed?.[i + 1] !== handle) return false;
    this.unarm(i);
    return true;
  }

  /** Index of `name` in `armed`, or -1. */
  private armedIndex(name: string): number {
    const armed = this.armed;
    if (armed) for (let i = 0; i < armed.length; i += 2) if (armed[i] === name) return i;
    return -1;
  }

  private unarm(i: number): void {
    const armed = this.armed;
    if (!armed) return;
    armed.splice(i, 2);
    if (armed.length === 0) this.armed = undefined;
  }

  /** Whether a transport is reliable: "timers zeroed", no retransmissions (§17.1.1.1). */
  protected reliable(transport: Destination['transport']): boolean {
    return this.ctx.transport.isReliable(transport);
  }

  /** Calls into the TU; a TU that throws is logged, never propagated into the state machine. */
  protected tellTu(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err, callback: what }, 'transaction user callback threw');
    }
  }

  protected sendRequest(req: SipRequest, dest: Destination): void {
    this.ctx.transport.sendRequest(req, dest, (err) => this.transportFailed(err));
  }

  protected sendResponse(res: SipResponse): Buffer | undefined {
    // §18.2.2: over a reliable transport "the response MUST be sent using the
    // existing connection to the source of the original request that created
    // the transaction". The transport reads that connection from res.source;
    // responses built by createResponse() or forwarded by a proxy carry none,
    // and a WebSocket client's Via (".invalid" sent-by, no rport) cannot lead
    // back to its connection, so the transaction supplies it.
    if (this.requestSource?.connectionId !== undefined) res.source = this.requestSource;
    return this.ctx.transport.sendResponse(res, (err) => this.transportFailed(err));
  }

  private transportFailed(err: TransportError): void {
    if (this.current === 'Terminated') {
      this.log.debug({ code: err.code }, 'transport error after termination ignored');
      return;
    }
    this.log.info({ code: err.code, msg: err.message, state: this.current }, 'transport error');
    try {
      this.handleTransportError(err);
    } catch (e) {
      this.log.error({ err: e }, 'transport error handling failed');
    }
  }

  protected abstract handleTransportError(err: TransportError): void;
}

/** The last Call-ID copied by sharedCallId(), as received and as copied. */
let lastCallIdSeen = '';
let lastCallIdCopy = '';

/**
 * A copy of a received Call-ID (a slice of its message's text) that refers
 * to nothing larger, reusing the previous copy when the value is the same.
 */
function sharedCallId(callId: string): string {
  if (callId !== lastCallIdSeen) {
    lastCallIdCopy = ownString(callId);
    lastCallIdSeen = lastCallIdCopy;
  }
  return lastCallIdCopy;
}

/**
 * The branch a matching key starts with (client: "branch method"; server,
 * RFC 3261: "branch sent-by method"); undefined for an RFC 2543 key, which
 * has none.
 */
export function branchOfKey(id: string): string | undefined {
  if (id.startsWith(RFC2543_KEY_PREFIX)) return undefined;
  const sp = id.indexOf(' ');
  return sp < 0 ? id : id.slice(0, sp);
}

/** How the transaction layer's RFC 2543 matching keys begin. */
export const RFC2543_KEY_PREFIX = '2543\n';
